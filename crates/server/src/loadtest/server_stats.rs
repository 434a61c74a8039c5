//! Reading a running confab's `/api/v1/stats`: its packet counters and process CPU time.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

/// The counters of `/api/v1/stats` the load tester uses.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct ServerStats {
    #[serde(default)]
    pub(crate) uptime_seconds: f64,
    #[serde(default)]
    pub(crate) process_cpu_seconds: Option<f64>,
    #[serde(default)]
    pub(crate) participants: u64,
    #[serde(default)]
    pub(crate) rooms: u64,
    #[serde(default)]
    pub(crate) workers: u64,
    #[serde(default)]
    pub(crate) datagrams_in: u64,
    #[serde(default)]
    pub(crate) datagrams_out: u64,
    #[serde(default)]
    pub(crate) rtp_in: u64,
    #[serde(default)]
    pub(crate) rtp_forwarded: u64,
    #[serde(default)]
    pub(crate) rtp_forwarded_bytes: u64,
    #[serde(default)]
    pub(crate) send_dropped: u64,
    #[serde(default)]
    pub(crate) keyframe_requests: u64,
}

impl ServerStats {
    /// The change from `earlier` to `self` (CPU time and counters).
    pub(crate) fn since(&self, earlier: &ServerStats) -> ServerStats {
        ServerStats {
            uptime_seconds: self.uptime_seconds - earlier.uptime_seconds,
            process_cpu_seconds: self.process_cpu_seconds.zip(earlier.process_cpu_seconds).map(|(b, a)| b - a),
            participants: self.participants,
            rooms: self.rooms,
            workers: self.workers,
            datagrams_in: self.datagrams_in.saturating_sub(earlier.datagrams_in),
            datagrams_out: self.datagrams_out.saturating_sub(earlier.datagrams_out),
            rtp_in: self.rtp_in.saturating_sub(earlier.rtp_in),
            rtp_forwarded: self.rtp_forwarded.saturating_sub(earlier.rtp_forwarded),
            rtp_forwarded_bytes: self.rtp_forwarded_bytes.saturating_sub(earlier.rtp_forwarded_bytes),
            send_dropped: self.send_dropped.saturating_sub(earlier.send_dropped),
            keyframe_requests: self.keyframe_requests.saturating_sub(earlier.keyframe_requests),
        }
    }

    /// Server CPU microseconds per forwarded RTP packet (of a difference).
    pub(crate) fn us_per_forwarded(&self) -> Option<f64> {
        let cpu = self.process_cpu_seconds?;
        (self.rtp_forwarded > 0).then(|| cpu * 1e6 / self.rtp_forwarded as f64)
    }
}

/// GET `/api/v1/stats` from the server at `addr` (`host` for the Host header).
/// With `token`, as `Authorization: Bearer` (a server with API keys wants a roomList token).
pub(crate) async fn fetch(addr: SocketAddr, host: &str, token: Option<&str>) -> Result<ServerStats, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut request = hyper::Request::get("/api/v1/stats").header(hyper::header::HOST, host);
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("not confab's stats: {e}"))
}
