//! Reconnection against a real `confab` (docs/protocol.md, "Reconnecting"): a participant whose
//! socket breaks keeps its place for the grace period and the others see it reconnecting; a new
//! socket with its token takes the place back (the same id, a fresh `joined`), even while the
//! old socket still looks alive; a wrong token, or a place that expired, gets `reconnect_failed`;
//! a socket closed on purpose leaves at once.

use std::time::Duration;

mod common;

use common::ws::{Ws, any_of, connect, next_of, send};

/// Join `room` as `name`: the socket and the `joined` message.
async fn join(base: &str, room: &str, name: &str) -> (Ws, serde_json::Value) {
    let mut ws = connect(base).await;
    send(&mut ws, serde_json::json!({"type": "join", "room": room, "name": name})).await;
    let joined = next_of(&mut ws, &["joined", "error"]).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    (ws, joined)
}

/// A new socket that asks for the place of `joined`'s participant with `token`: the socket and
/// the reply.
async fn reconnect(base: &str, joined: &serde_json::Value, token: &str) -> (Ws, serde_json::Value) {
    let mut ws = connect(base).await;
    let participant = joined["participant"]["id"].clone();
    send(&mut ws, serde_json::json!({"type": "join", "room": "r", "name": "x", "reconnect": {"participant": participant, "token": token}})).await;
    let reply = next_of(&mut ws, &["joined", "error"]).await;
    (ws, reply)
}

#[tokio::test]
async fn a_broken_socket_keeps_its_place_and_a_new_one_takes_it_back() {
    let (_server, _out, base) = common::server(&[]);
    let (ada, ada_joined) = join(&base, "r", "Ada").await;
    let (mut bob, _) = join(&base, "r", "Bob").await;
    let ada_id = ada_joined["participant"]["id"].as_str().unwrap().to_string();
    let token = ada_joined["reconnectToken"].as_str().expect("joined carries a reconnect token").to_string();
    assert_eq!(token.len(), 32, "{ada_joined}");

    // The connection breaks: no close frame.
    drop(ada);
    let told = next_of(&mut bob, &["participant_reconnecting", "participant_left"]).await;
    assert_eq!(told, serde_json::json!({"type": "participant_reconnecting", "participant": ada_id}));
    // A late joiner sees Ada as reconnecting.
    let (_cy, cy_joined) = join(&base, "r", "Cy").await;
    let ada_seen = cy_joined["participants"].as_array().unwrap().iter().find(|p| p["id"] == ada_id.as_str()).cloned();
    assert_eq!(ada_seen.map(|p| p["reconnecting"].clone()), Some(serde_json::json!(true)), "{cy_joined}");

    // A wrong token is refused and takes nothing.
    let (_intruder, refused) = reconnect(&base, &ada_joined, "00000000000000000000000000000000").await;
    assert_eq!(refused["code"], "reconnect_failed", "{refused}");

    let (mut ada, again) = reconnect(&base, &ada_joined, &token).await;
    assert_eq!(again["type"], "joined", "{again}");
    assert_eq!(again["reconnected"], true, "{again}");
    assert_eq!(again["participant"]["id"], ada_id.as_str(), "{again}");
    assert_eq!(again["participants"].as_array().unwrap().len(), 2, "Bob and Cy: {again}");
    assert_eq!(next_of(&mut bob, &["participant_reconnected", "participant_left"]).await["type"], "participant_reconnected");

    // The new socket serves the place.
    send(&mut ada, serde_json::json!({"type": "ping", "id": 9})).await;
    assert_eq!(next_of(&mut ada, &["pong"]).await["id"], 9);

    // A second socket takes the place over while this one is still open: this one is closed
    // with 4003.
    let (_ada2, third) = reconnect(&base, &ada_joined, &token).await;
    assert_eq!(third["reconnected"], true, "{third}");
    assert_eq!(next_of(&mut ada, &[]).await, serde_json::json!({"close": 4003}));
    assert!(any_of(&mut bob, &["participant_left"], Duration::from_millis(500)).await.is_none(), "Ada never left");
}

#[tokio::test]
async fn a_place_not_taken_back_in_time_is_left_and_a_closed_socket_leaves_at_once() {
    let (_server, _out, base) = common::server(&["--reconnect-grace", "1s"]);
    let (ada, ada_joined) = join(&base, "r", "Ada").await;
    let (mut bob, _) = join(&base, "r", "Bob").await;
    let token = ada_joined["reconnectToken"].as_str().unwrap().to_string();
    drop(ada);
    assert_eq!(next_of(&mut bob, &["participant_reconnecting"]).await["type"], "participant_reconnecting");
    let left = next_of(&mut bob, &["participant_left"]).await;
    assert_eq!(left["reason"], "disconnected", "{left}");
    let (_late, refused) = reconnect(&base, &ada_joined, &token).await;
    assert_eq!(refused["code"], "reconnect_failed", "{refused}");

    // A socket closed on purpose (a tab closed) leaves without a grace period.
    let (mut cy, _) = join(&base, "r", "Cy").await;
    next_of(&mut bob, &["participant_joined"]).await;
    cy.close(None).await.unwrap();
    let next = next_of(&mut bob, &["participant_reconnecting", "participant_left"]).await;
    assert_eq!(next["type"], "participant_left", "{next}");
}

#[tokio::test]
async fn without_a_grace_period_there_is_no_token_and_a_broken_socket_leaves() {
    let (_server, _out, base) = common::server(&["--reconnect-grace", "0s"]);
    let (ada, ada_joined) = join(&base, "r", "Ada").await;
    assert!(ada_joined.get("reconnectToken").is_none(), "{ada_joined}");
    let (mut bob, _) = join(&base, "r", "Bob").await;
    drop(ada);
    assert_eq!(next_of(&mut bob, &["participant_reconnecting", "participant_left"]).await["type"], "participant_left");
}
