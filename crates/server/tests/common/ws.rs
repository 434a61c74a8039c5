//! A WebSocket client of the signaling protocol, for the tests that speak it to a real server.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket to the server at `base` (`http://...`).
#[allow(dead_code)]
pub(crate) async fn connect(base: &str) -> Ws {
    let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Send one message.
#[allow(dead_code)]
pub(crate) async fn send(ws: &mut Ws, msg: serde_json::Value) {
    ws.send(Message::Text(msg.to_string().into())).await.unwrap();
}

/// The next message `pick` takes (others are skipped), within 10 s; a close frame comes as
/// `{"close": code}`.
#[allow(dead_code)]
pub(crate) async fn next(ws: &mut Ws, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match tokio::time::timeout(left, ws.next()).await.expect("nothing within 10 s") {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Close(frame))) => return serde_json::json!({"close": frame.map(|f| u16::from(f.code))}),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended: {other:?}"),
        };
        if pick(&msg) {
            return msg;
        }
    }
}

/// The next message of one of `types` (others are skipped), within 10 s; a close frame comes as
/// `{"close": code}`.
#[allow(dead_code)]
pub(crate) async fn next_of(ws: &mut Ws, types: &[&str]) -> serde_json::Value {
    next(ws, |m| types.contains(&m["type"].as_str().unwrap_or(""))).await
}

/// Whether a message of one of `types` arrives within `wait`.
#[allow(dead_code)]
pub(crate) async fn any_of(ws: &mut Ws, types: &[&str], wait: Duration) -> Option<serde_json::Value> {
    tokio::time::timeout(wait, next_of(ws, types)).await.ok()
}
