//! `GET /api/v1/stats`: what the media workers have done and what it cost, for operators and the
//! load tester (server CPU per forwarded packet).

use std::sync::Arc;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::http::AppState;
use crate::worker::{ToWorker, WorkerStats};

/// The stats document (also what `/metrics` renders).
#[derive(Debug, Default, Serialize)]
pub(crate) struct Stats {
    /// Seconds since the server started.
    pub(crate) uptime_seconds: f64,
    /// CPU time the whole process has used (user + system), in seconds.
    pub(crate) process_cpu_seconds: Option<f64>,
    /// Resident memory of the process, bytes.
    pub(crate) process_resident_bytes: Option<u64>,
    pub(crate) participants: u64,
    pub(crate) rooms: u64,
    /// Tracks published now.
    pub(crate) tracks: u64,
    pub(crate) datagrams_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) datagrams_unrouted: u64,
    pub(crate) datagrams_malformed: u64,
    pub(crate) rtp_in: u64,
    pub(crate) rtp_forwarded: u64,
    pub(crate) rtp_forwarded_bytes: u64,
    pub(crate) datagrams_out: u64,
    pub(crate) bytes_out: u64,
    pub(crate) send_dropped: u64,
    /// Keyframe requests (PLI) sent to publishers.
    pub(crate) keyframe_requests: u64,
    /// Keyframe requests (PLI, FIR) received from subscribers.
    pub(crate) keyframe_requests_received: u64,
    /// NACKs received from subscribers.
    pub(crate) nacks_received: u64,
    /// NACKs sent to publishers.
    pub(crate) nacks_sent: u64,
    pub(crate) layer_switches: u64,
    /// Data-channel messages received from participants, delivered (one per recipient), and
    /// dropped (malformed, over a limit, not granted, or a recipient not reading).
    pub(crate) data_in: u64,
    pub(crate) data_out: u64,
    pub(crate) data_dropped: u64,
    /// WHIP and WHEP sessions open now (they are participants too).
    pub(crate) http_sessions: usize,
    pub(crate) workers: usize,
    /// The built-in STUN/TURN server, if it runs.
    pub(crate) turn: Option<TurnStats>,
    /// Layer selection per subscriber: its downlink estimate and, per remote video track, the
    /// layer forwarded, the target and why it last changed.
    pub(crate) downlinks: Vec<Downlink>,
}

/// The built-in TURN server's counters.
#[derive(Debug, Default, Serialize)]
pub(crate) struct TurnStats {
    /// Allocations alive now.
    pub(crate) allocations: u64,
    /// Allocations made since the start.
    pub(crate) allocations_total: u64,
    /// Packets relayed, both directions.
    pub(crate) relayed_packets: u64,
    /// Binding requests answered.
    pub(crate) bindings: u64,
    /// Requests refused with an error.
    pub(crate) errors: u64,
    /// Packets dropped.
    pub(crate) dropped: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Downlink {
    participant: String,
    estimate_bps: Option<u64>,
    tracks: Vec<DownlinkTrack>,
}

#[derive(Debug, Serialize)]
struct DownlinkTrack {
    publisher: String,
    track: String,
    layer: Option<String>,
    target: Option<String>,
    paused: bool,
    reason: &'static str,
    switches: u64,
    size: Option<(u32, u32)>,
}

impl From<sfu::DownlinkStats> for Downlink {
    fn from(d: sfu::DownlinkStats) -> Self {
        Downlink {
            participant: d.participant.to_string(),
            estimate_bps: d.estimate,
            tracks: d
                .tracks
                .into_iter()
                .map(|t| DownlinkTrack {
                    publisher: t.publisher.to_string(),
                    track: t.track,
                    paused: t.target.is_none(),
                    layer: t.layer,
                    target: t.target,
                    reason: t.reason,
                    switches: t.switches,
                    size: t.size,
                })
                .collect(),
        }
    }
}

pub(crate) async fn handler(State(state): State<Arc<AppState>>, headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Err(refused) = crate::http::authorize_list(&state, &headers) {
        return refused;
    }
    Json(stats(&state).await).into_response()
}

/// The server's statistics, summed over the workers.
pub(crate) async fn stats(state: &AppState) -> Stats {
    use std::sync::atomic::Ordering::Relaxed;
    let mut total = Stats {
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        process_cpu_seconds: process_cpu_seconds(),
        process_resident_bytes: process_resident_bytes(),
        workers: state.workers.len(),
        http_sessions: state.http_sessions.len(),
        turn: state.turn.as_ref().map(|t| {
            let c = &t.counters;
            TurnStats {
                allocations: c.allocations.load(Relaxed),
                allocations_total: c.allocations_total.load(Relaxed),
                relayed_packets: c.relayed.load(Relaxed),
                bindings: c.bindings.load(Relaxed),
                errors: c.errors.load(Relaxed),
                dropped: c.dropped.load(Relaxed),
            }
        }),
        ..Stats::default()
    };
    for worker in &state.workers {
        let (tx, rx) = oneshot::channel();
        if worker.tx.send(ToWorker::Stats(tx)).await.is_err() {
            continue;
        }
        let Ok(WorkerStats { sfu: s, tracks, send_dropped, downlinks }) = rx.await else { continue };
        total.tracks += tracks;
        total.keyframe_requests_received += s.keyframe_requests_received;
        total.nacks_received += s.nacks_received;
        total.nacks_sent += s.nacks_sent;
        total.downlinks.extend(downlinks.into_iter().map(Downlink::from));
        total.layer_switches += s.layer_switches;
        total.participants += s.participants;
        total.rooms += s.rooms;
        total.datagrams_in += s.datagrams_in;
        total.bytes_in += s.bytes_in;
        total.datagrams_unrouted += s.datagrams_unrouted;
        total.datagrams_malformed += s.datagrams_malformed;
        total.rtp_in += s.rtp_in;
        total.rtp_forwarded += s.rtp_forwarded;
        total.rtp_forwarded_bytes += s.rtp_forwarded_bytes;
        total.datagrams_out += s.datagrams_out;
        total.bytes_out += s.bytes_out;
        total.keyframe_requests += s.keyframe_requests;
        total.data_in += s.data_in;
        total.data_out += s.data_out;
        total.data_dropped += s.data_dropped;
        total.send_dropped += send_dropped;
    }
    total
}

/// Resident memory of this process in bytes, from /proc (Linux); `None` elsewhere.
pub(crate) fn process_resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // 4 KiB pages on the architectures confab builds for.
    Some(pages * 4096)
}

/// User + system CPU time of this process, from /proc (Linux); `None` elsewhere.
pub(crate) fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture confab builds for.
    Some(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_is_read() {
        let cpu = super::process_cpu_seconds();
        if cfg!(target_os = "linux") {
            assert!(cpu.is_some_and(|c| c >= 0.0));
        }
    }
}
