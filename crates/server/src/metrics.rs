//! `GET /metrics`: the statistics of `/api/v1/stats` in Prometheus' text format (version 0.0.4),
//! for a scraper. With API keys configured it needs a `roomList` token as `Authorization:
//! Bearer` (Prometheus' `authorization` scrape setting), like the statistics.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::http::AppState;
use crate::stats::Stats;

/// The content type of the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) async fn handler(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = crate::http::authorize_list(&state, &headers) {
        return refused;
    }
    let stats = crate::stats::stats(&state).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&stats, state.draining())).into_response()
}

/// One metric: name, type, help, value.
struct Metric<'a>(&'a str, &'a str, &'a str, f64);

/// The text of every metric.
pub(crate) fn render(s: &Stats, draining: bool) -> String {
    let n = |v: u64| v as f64;
    let mut metrics = vec![
        Metric("confab_up", "gauge", "1 while the server serves, 0 while it drains before exiting.", if draining { 0.0 } else { 1.0 }),
        Metric("confab_uptime_seconds", "gauge", "Seconds since the server started.", s.uptime_seconds),
        Metric("confab_workers", "gauge", "Media workers (threads with a UDP port each).", s.workers as f64),
        Metric("confab_rooms", "gauge", "Rooms open.", n(s.rooms)),
        Metric("confab_participants", "gauge", "Participants present (WebSocket, WHIP and WHEP).", n(s.participants)),
        Metric("confab_http_sessions", "gauge", "WHIP and WHEP sessions open.", s.http_sessions as f64),
        Metric("confab_tracks", "gauge", "Tracks published.", n(s.tracks)),
        Metric("confab_datagrams_received_total", "counter", "UDP datagrams received on the media ports.", n(s.datagrams_in)),
        Metric("confab_received_bytes_total", "counter", "Bytes of those datagrams.", n(s.bytes_in)),
        Metric("confab_datagrams_sent_total", "counter", "UDP datagrams sent from the media ports.", n(s.datagrams_out)),
        Metric("confab_sent_bytes_total", "counter", "Bytes of those datagrams.", n(s.bytes_out)),
        Metric("confab_rtp_packets_received_total", "counter", "RTP packets received from publishers.", n(s.rtp_in)),
        Metric("confab_rtp_packets_forwarded_total", "counter", "RTP packets forwarded to subscribers.", n(s.rtp_forwarded)),
        Metric("confab_rtp_forwarded_bytes_total", "counter", "Payload bytes of the forwarded RTP packets.", n(s.rtp_forwarded_bytes)),
        Metric("confab_nacks_received_total", "counter", "NACKs received from subscribers (answered by retransmission).", n(s.nacks_received)),
        Metric("confab_nacks_sent_total", "counter", "NACKs sent to publishers for packets lost on the way in.", n(s.nacks_sent)),
        Metric("confab_plis_sent_total", "counter", "Keyframe requests (PLI) sent to publishers.", n(s.keyframe_requests)),
        Metric("confab_keyframe_requests_received_total", "counter", "Keyframe requests (PLI, FIR) received from subscribers.", n(s.keyframe_requests_received)),
        Metric("confab_layer_switches_total", "counter", "Simulcast layer switches, starts and resumes on subscribers' video.", n(s.layer_switches)),
        Metric("confab_data_messages_received_total", "counter", "Data-channel messages received from participants.", n(s.data_in)),
        Metric("confab_data_messages_delivered_total", "counter", "Data-channel messages delivered, one per recipient.", n(s.data_out)),
        Metric("confab_data_messages_dropped_total", "counter", "Data-channel messages dropped: malformed, over a limit, not granted, or a recipient not reading.", n(s.data_dropped)),
    ];
    let dropped = [("unrouted", s.datagrams_unrouted), ("malformed", s.datagrams_malformed), ("send_queue_full", s.send_dropped)];
    if let Some(t) = &s.turn {
        metrics.extend([
            Metric("confab_turn_allocations", "gauge", "TURN allocations alive.", n(t.allocations)),
            Metric("confab_turn_allocations_total", "counter", "TURN allocations made.", n(t.allocations_total)),
            Metric("confab_turn_relayed_packets_total", "counter", "Packets relayed by TURN, both directions.", n(t.relayed_packets)),
            Metric("confab_turn_bindings_total", "counter", "STUN binding requests answered.", n(t.bindings)),
            Metric("confab_turn_errors_total", "counter", "STUN/TURN requests refused with an error.", n(t.errors)),
            Metric("confab_turn_dropped_packets_total", "counter", "Packets the TURN server dropped.", n(t.dropped)),
        ]);
    }
    if let Some(cpu) = s.process_cpu_seconds {
        metrics.push(Metric("process_cpu_seconds_total", "counter", "User and system CPU time of the process, seconds.", cpu));
    }
    if let Some(rss) = s.process_resident_bytes {
        metrics.push(Metric("process_resident_memory_bytes", "gauge", "Resident memory of the process, bytes.", rss as f64));
    }
    let mut out = String::with_capacity(4096);
    for Metric(name, kind, help, value) in &metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    let name = "confab_datagrams_dropped_total";
    let _ = writeln!(out, "# HELP {name} Datagrams dropped, by reason.\n# TYPE {name} counter");
    for (reason, v) in dropped {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_help_type_and_a_value_in_the_text_format() {
        let stats = Stats { rooms: 2, participants: 5, rtp_forwarded: 1234, datagrams_malformed: 7, turn: Some(Default::default()), process_cpu_seconds: Some(1.5), ..Stats::default() };
        let text = render(&stats, false);
        assert!(text.contains("\nconfab_rooms 2\n"), "{text}");
        assert!(text.contains("\nconfab_participants 5\n"));
        assert!(text.contains("\nconfab_rtp_packets_forwarded_total 1234\n"));
        assert!(text.contains("confab_datagrams_dropped_total{reason=\"malformed\"} 7\n"));
        assert!(text.contains("\nconfab_turn_allocations 0\n"));
        assert!(text.contains("\nprocess_cpu_seconds_total 1.5\n"));
        assert!(text.starts_with("# HELP confab_up "));
        assert!(text.contains("\nconfab_up 1\n"));
        assert!(render(&stats, true).contains("\nconfab_up 0\n"));
        // Every sample line's metric has a HELP and a TYPE line before it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
