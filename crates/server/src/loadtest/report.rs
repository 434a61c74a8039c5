//! The load test's figures: a table for people, JSON for scripts and docs/benchmarks.md.

use std::time::Duration;

use serde_json::json;

use super::Args;
use super::probe::{Latencies, Totals};
use super::server_stats::ServerStats;

/// Everything one run measured.
pub(crate) struct Report {
    pub(crate) args: Args,
    /// The server's stats before the test (its workers).
    pub(crate) before: ServerStats,
    pub(crate) connected: u64,
    pub(crate) failed: u64,
    /// How long measuring lasted.
    pub(crate) wall: Duration,
    /// The server's counters over the measurement.
    pub(crate) server: ServerStats,
    /// Packets publishers wrote while measuring.
    pub(crate) sent: u64,
    pub(crate) keyframe_requests: u64,
    pub(crate) totals: Totals,
    pub(crate) latencies: Latencies,
    /// CPU seconds the load tester itself used while measuring.
    pub(crate) load_tester_cpu: Option<f64>,
    pub(crate) errors: Vec<String>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

impl Report {
    fn secs(&self) -> f64 {
        self.wall.as_secs_f64().max(1e-3)
    }

    fn delivery(&self) -> Option<f64> {
        self.totals.loss().map(|l| 1.0 - l)
    }

    /// Received over what every participant should have received: each packet a publisher sent,
    /// once per other participant. Unlike [`Report::delivery`] (within the streams that
    /// arrived), this counts a stream the server never forwarded (a paused video) as missing.
    fn fan_out_delivery(&self) -> Option<f64> {
        let receivers = u64::from(self.args.publishers + self.args.subscribers).saturating_sub(1);
        let expected = self.sent * receivers;
        (expected > 0).then(|| self.totals.received as f64 / expected as f64)
    }

    /// The figures as a table.
    pub(crate) fn table(&self) -> String {
        let a = &self.args;
        let s = &self.server;
        let secs = self.secs();
        let video = if a.video_bitrate > 0 { format!("video {} kbit/s at {} fps", a.video_bitrate / 1000, a.fps) } else { "no video".into() };
        let audio = if a.no_audio { "no audio" } else { "audio 50 pkt/s" };
        let cpu = s.process_cpu_seconds;
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("{k:<26}{v}\n"));
        row("scenario", format!("{} publishers, {} subscribers; {video}, {audio}; {:.0} s", a.publishers, a.subscribers, secs));
        row("participants", format!("{} connected, {} failed (of {})", self.connected, self.failed, a.publishers + a.subscribers));
        row("sent by publishers", format!("{} packets ({:.0}/s)", self.sent, self.sent as f64 / secs));
        row(
            "received",
            format!(
                "{} packets ({:.0}/s) on {} streams ({} % of all sent x receivers); in those streams delivery {} %, loss {} %, duplicates {}, corrupt tags {}",
                self.totals.received,
                self.totals.received as f64 / secs,
                self.totals.streams,
                opt(self.fan_out_delivery().map(|d| d * 100.0), 1),
                opt(self.delivery().map(|d| d * 100.0), 3),
                opt(self.totals.loss().map(|l| l * 100.0), 3),
                self.totals.duplicates,
                self.totals.corrupt
            ),
        );
        row(
            "one-way latency",
            format!(
                "p50 {} ms, p99 {} ms, max {} ms; jitter {} ms",
                opt(self.latencies.quantile_ms(0.5), 2),
                opt(self.latencies.quantile_ms(0.99), 2),
                opt(self.latencies.quantile_ms(1.0), 2),
                opt(self.totals.jitter_ms(), 2)
            ),
        );
        row(
            "server packets",
            format!("{} RTP in, {} forwarded ({:.0}/s), {} send drops", s.rtp_in, s.rtp_forwarded, s.rtp_forwarded as f64 / secs, s.send_dropped),
        );
        row(
            "server CPU",
            format!(
                "{} s over {:.1} s ({} % of a core), {} media workers",
                opt(cpu, 2),
                secs,
                opt(cpu.map(|c| c / secs * 100.0), 0),
                self.before.workers
            ),
        );
        row("server CPU per packet", format!("{} µs per forwarded packet", opt(s.us_per_forwarded(), 2)));
        row(
            "forwarded per CPU-second",
            opt(cpu.filter(|c| *c > 0.0).map(|c| s.rtp_forwarded as f64 / c), 0),
        );
        row("keyframe requests", format!("{} to publishers", self.keyframe_requests));
        row("load tester CPU", format!("{} s", opt(self.load_tester_cpu, 2)));
        for e in self.errors.iter().take(10) {
            row("error", e.clone());
        }
        if self.errors.len() > 10 {
            row("error", format!("... and {} more", self.errors.len() - 10));
        }
        out
    }

    /// The figures as JSON.
    pub(crate) fn json(&self) -> String {
        let a = &self.args;
        let s = &self.server;
        let secs = self.secs();
        let doc = json!({
            "scenario": {
                "url": a.url, "room": a.room, "publishers": a.publishers, "subscribers": a.subscribers,
                "videoBitrate": a.video_bitrate, "fps": a.fps, "audio": !a.no_audio,
                "durationSeconds": secs, "ramp": a.ramp,
            },
            "participants": { "connected": self.connected, "failed": self.failed },
            "sent": { "packets": self.sent, "perSecond": self.sent as f64 / secs },
            "received": {
                "packets": self.totals.received, "perSecond": self.totals.received as f64 / secs,
                "expected": self.totals.expected, "streams": self.totals.streams, "duplicates": self.totals.duplicates,
                "corrupt": self.totals.corrupt, "delivery": self.delivery(), "loss": self.totals.loss(), "fanOutDelivery": self.fan_out_delivery(),
            },
            "latencyMs": {
                "p50": self.latencies.quantile_ms(0.5), "p99": self.latencies.quantile_ms(0.99),
                "max": self.latencies.quantile_ms(1.0), "jitter": self.totals.jitter_ms(),
            },
            "server": {
                "workers": self.before.workers,
                "cpuSeconds": s.process_cpu_seconds,
                "rtpIn": s.rtp_in, "rtpForwarded": s.rtp_forwarded, "rtpForwardedBytes": s.rtp_forwarded_bytes,
                "datagramsIn": s.datagrams_in, "datagramsOut": s.datagrams_out, "sendDropped": s.send_dropped,
                "usPerForwardedPacket": s.us_per_forwarded(),
                "forwardedPerCpuSecond": s.process_cpu_seconds.filter(|c| *c > 0.0).map(|c| s.rtp_forwarded as f64 / c),
            },
            "keyframeRequests": self.keyframe_requests,
            "loadTesterCpuSeconds": self.load_tester_cpu,
            "errors": self.errors,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}
