//! `confab load-test`: headless participants that put a running confab under load through its
//! real signaling and media path, and the figures operators ask for: delivery, loss, one-way
//! latency and jitter as participants see them, and the server's CPU time per forwarded packet
//! (from its `/api/v1/stats`, read when measuring starts and ends).
//!
//! Publishers join first, then subscribers, at `--ramp` participants a second. Measuring starts
//! once every participant is connected (or the join timeout passed) and a warm-up has gone by,
//! and lasts `--duration`.

mod peer;
mod probe;
mod report;
mod server_stats;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use peer::{DRAINING, MEASURING, Publish, STOPPING, Setup, Shared};
use probe::{Latencies, Totals};
use report::Report;

/// How long after the measuring window packets sent in it are still counted when they arrive.
const DRAIN: Duration = Duration::from_secs(1);

/// Options of `confab load-test`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Base URL of the confab to test.
    #[arg(long, default_value = "http://127.0.0.1:7880")]
    pub(crate) url: String,
    /// Room to join (created by the first participant).
    #[arg(long, default_value = "load-test")]
    pub(crate) room: String,
    /// Participants that publish (they also receive every other publisher).
    #[arg(long, default_value_t = 1)]
    pub(crate) publishers: u32,
    /// Participants that only receive.
    #[arg(long, default_value_t = 10)]
    pub(crate) subscribers: u32,
    /// Video bitrate of each publisher, bit/s; `k` and `M` suffixes allowed; 0 for no video.
    #[arg(long, default_value = "1.5M", value_parser = parse_bitrate)]
    pub(crate) video_bitrate: u64,
    /// Video frames per second.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub(crate) fps: u32,
    /// Publish audio (Opus-sized packets, 50 a second) [default].
    #[arg(long, overrides_with = "no_audio")]
    pub(crate) audio: bool,
    /// Publish no audio.
    #[arg(long)]
    pub(crate) no_audio: bool,
    /// How long to measure, e.g. `30s`, `2m`.
    #[arg(long, default_value = "30s", value_parser = crate::config::parse_duration)]
    pub(crate) duration: Duration,
    /// Time between every participant connected and measuring, e.g. `3s`.
    #[arg(long, default_value = "3s", value_parser = crate::config::parse_duration)]
    pub(crate) warmup: Duration,
    /// Participants started per second.
    #[arg(long, default_value_t = 20.0)]
    pub(crate) ramp: f64,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

fn parse_bitrate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1e3),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| format!("{s:?} is not a bitrate (e.g. 1500000, 1500k, 1.5M)"))?;
    if !(0.0..=100e6).contains(&(v * mult)) {
        return Err(format!("{s}: between 0 and 100M"));
    }
    Ok((v * mult) as u64)
}


/// Where the server is, from `--url`.
struct Target {
    host: String,
    addr: SocketAddr,
    ws_url: String,
    /// A local address that reaches the server (media binds there).
    local_ip: IpAddr,
}

fn target(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("--url {url}: only http:// URLs are supported"))?;
    let host = rest.split('/').next().unwrap_or_default().to_string();
    let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !host.ends_with(']') {
        host.clone()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("--url {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url}: no address"))?;
    let probe = UdpSocket::bind(SocketAddr::new(if addr.is_ipv4() { [0, 0, 0, 0].into() } else { [0u16; 8].into() }, 0))
        .and_then(|s| s.connect(addr).and_then(|()| s.local_addr()))
        .map_err(|e| format!("no route to {addr}: {e}"))?;
    Ok(Target { ws_url: format!("ws://{host}/ws"), host, addr, local_ip: probe.ip() })
}

/// Run the load test; prints progress to stderr and the report to stdout.
/// Run the load test. With API keys configured (CONFAB_KEYS, as the server has them), the
/// participants join with tokens minted by the first key, and the statistics are read with one.
pub(crate) fn main(args: Args, keys: &crate::auth::Keys) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let report = runtime.block_on(run(args.clone(), Tokens::new(keys)))?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, report.json()).map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Tokens minted by the first API key, if there is one.
struct Tokens(Option<(String, String)>);

impl Tokens {
    fn new(keys: &crate::auth::Keys) -> Tokens {
        Tokens(keys.names().next().and_then(|k| Some((k.to_string(), keys.secret(k)?.to_string()))))
    }

    fn mint(&self, sub: &str, video: crate::auth::VideoGrant) -> Result<Option<String>, String> {
        let Some((key, secret)) = &self.0 else { return Ok(None) };
        let now = crate::auth::unix_now();
        let claims = crate::auth::Claims { iss: key.clone(), sub: sub.into(), name: None, nbf: Some(now - 10), exp: now + 24 * 3600, video };
        crate::auth::mint(&claims, secret).map(Some)
    }
}

async fn run(args: Args, tokens: Tokens) -> Result<Report, String> {
    let target = target(&args.url)?;
    let stats_token = tokens.mint("load-test", crate::auth::VideoGrant { room_list: true, ..Default::default() })?;
    let before = server_stats::fetch(target.addr, &target.host, stats_token.as_deref()).await.map_err(|e| format!("cannot read {}/api/v1/stats: {e}", args.url))?;
    let total = args.publishers + args.subscribers;
    if total == 0 {
        return Err("nothing to do: --publishers and --subscribers are both 0".into());
    }
    let publish = Publish { audio: !args.no_audio, video: (args.video_bitrate > 0).then_some((args.video_bitrate, args.fps)) };
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let ramp = args.ramp.max(0.1);
    eprintln!(
        "load-test: {} publishers + {} subscribers in room {:?} at {}; ramp {ramp}/s",
        args.publishers, args.subscribers, args.room, args.url
    );

    let mut tasks = Vec::with_capacity(total as usize);
    let mut last_progress = Instant::now();
    for i in 0..total {
        let at = started + Duration::from_secs_f64(f64::from(i) / ramp);
        tokio::time::sleep_until(at.into()).await;
        let publisher = i < args.publishers;
        let setup = Setup {
            ws_url: target.ws_url.clone(),
            room: args.room.clone(),
            name: if publisher { format!("pub-{i}") } else { format!("sub-{}", i - args.publishers) },
            index: i,
            publish: publisher.then_some(publish),
            local_ip: target.local_ip,
            token: tokens.mint(&format!("load-test-{i}"), crate::auth::VideoGrant { room: Some(args.room.clone()), room_join: true, ..Default::default() })?,
        };
        tasks.push(tokio::spawn(peer::run(setup, shared.clone())));
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            eprintln!("  starting: {}/{total} started, {} joined, {} connected", i + 1, shared.joined.load(Ordering::Relaxed), shared.connected.load(Ordering::Relaxed));
        }
    }
    // Every participant connected, or a timeout.
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < u64::from(total) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    // Then every stream delivering to every receiver (each publisher's audio and video to each
    // other participant), or a timeout: measuring while some are still being set up would count
    // set-up as loss of fan-out.
    let kinds = u64::from(publish.audio) + u64::from(publish.video.is_some());
    let streams = u64::from(args.publishers) * u64::from(total - 1) * kinds;
    let deadline = Instant::now() + Duration::from_secs(20);
    while shared.streams_flowing.load(Ordering::Relaxed) < streams && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "  {connected}/{total} connected and {}/{streams} streams flowing after {:.1} s; warming up {:?}",
        shared.streams_flowing.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        args.warmup
    );
    tokio::time::sleep(args.warmup).await;

    let a = server_stats::fetch(target.addr, &target.host, stats_token.as_deref()).await.map_err(|e| format!("stats: {e}"))?;
    let own_a = crate::stats::process_cpu_seconds();
    shared.measure_from_us.store(peer::unix_us(), Ordering::Relaxed);
    shared.phase.store(MEASURING, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut last = (t0, a.clone(), 0u64, 0u64);
    while t0.elapsed() < args.duration {
        let left = args.duration.saturating_sub(t0.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(2))).await;
        let Ok(now_stats) = server_stats::fetch(target.addr, &target.host, stats_token.as_deref()).await else { continue };
        let (sent, received) = (shared.sent.load(Ordering::Relaxed), shared.received.load(Ordering::Relaxed));
        let secs = last.0.elapsed().as_secs_f64().max(1e-3);
        let d = now_stats.since(&last.1);
        eprintln!(
            "  [{:>4.0}s/{:.0}s] {} connected, {} failed · publishers {:.0} pkt/s · participants receive {:.0} pkt/s · server forwards {:.0} pkt/s at {} µs CPU each",
            t0.elapsed().as_secs_f64(),
            args.duration.as_secs_f64(),
            shared.connected.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
            (sent - last.2) as f64 / secs,
            (received - last.3) as f64 / secs,
            d.rtp_forwarded as f64 / secs,
            d.us_per_forwarded().map_or("?".into(), |us| format!("{us:.2}")),
        );
        last = (Instant::now(), now_stats, sent, received);
    }
    let wall = t0.elapsed();
    shared.measure_to_us.store(peer::unix_us(), Ordering::Relaxed);
    shared.phase.store(DRAINING, Ordering::Relaxed);
    let b = server_stats::fetch(target.addr, &target.host, stats_token.as_deref()).await.map_err(|e| format!("stats: {e}"))?;
    let own_b = crate::stats::process_cpu_seconds();
    // Packets sent in the window may still be on their way (queued at the server, or held up by
    // a pause of the machine): they count as received when they arrive within DRAIN.
    tokio::time::sleep(DRAIN).await;
    shared.phase.store(STOPPING, Ordering::Relaxed);

    let mut totals = Totals::default();
    let mut latencies = Latencies::default();
    let mut errors = Vec::new();
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(outcome)) => {
                totals.add(outcome.stats.totals());
                latencies.merge(&outcome.stats.latencies);
                errors.extend(outcome.error);
            }
            Ok(Err(e)) => errors.push(format!("a participant's task failed: {e}")),
            Err(_) => errors.push("a participant did not stop within 5 s".into()),
        }
    }
    Ok(Report {
        args,
        before,
        connected,
        failed: shared.failed.load(Ordering::Relaxed),
        wall,
        server: b.since(&a),
        sent: shared.sent.load(Ordering::Relaxed),
        keyframe_requests: shared.keyframe_requests.load(Ordering::Relaxed),
        totals,
        latencies,
        load_tester_cpu: own_b.zip(own_a).map(|(b, a)| b - a),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_and_durations_parse() {
        assert_eq!(parse_bitrate("1500000"), Ok(1_500_000));
        assert_eq!(parse_bitrate("1500k"), Ok(1_500_000));
        assert_eq!(parse_bitrate("1.5M"), Ok(1_500_000));
        assert_eq!(parse_bitrate("0"), Ok(0));
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("-1").is_err());
        assert!(parse_bitrate("1G").is_err());
    }

    #[test]
    fn targets_resolve() {
        let t = target("http://127.0.0.1:7880").unwrap();
        assert_eq!(t.addr, "127.0.0.1:7880".parse().unwrap());
        assert_eq!(t.ws_url, "ws://127.0.0.1:7880/ws");
        assert_eq!(t.local_ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(target("http://127.0.0.1/").unwrap().addr.port(), 80);
        assert!(target("https://example.org").is_err());
    }
}
