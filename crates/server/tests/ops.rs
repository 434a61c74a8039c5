//! Operating a real `confab`: Prometheus metrics, readiness, and the graceful drain on SIGTERM
//! (participants told, joins refused, exit once they leave, at the drain timeout, or at a second
//! signal).

use std::time::{Duration, Instant};

mod common;

use common::http;
use common::ws::{Ws, connect, next_of, send};

async fn join(base: &str, room: &str) -> (Ws, serde_json::Value) {
    let mut ws = connect(base).await;
    let msg = serde_json::json!({"type": "join", "room": room, "name": "Op"});
    send(&mut ws, msg).await;
    let reply = next_of(&mut ws, &["joined", "error"]).await;
    (ws, reply)
}

fn signal(server: &common::Running, name: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(server.0.id().to_string()).status().unwrap();
    assert!(status.success());
}

/// Wait up to `limit` for the server to exit; its exit status.
fn exited(server: &mut common::Running, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(status) = server.0.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn metric(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.split([' ', '{']).next() == Some(name)).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_count_what_is_there_in_the_prometheus_text_format() {
    let (_server, _out, banner) = common::server_banner(&["--turn", "127.0.0.1:0"]);
    let base = common::url_of(&banner);
    let r = http(&base, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(metric(&r.body, "confab_participants"), 0.0);
    assert_eq!(metric(&r.body, "confab_up"), 1.0);
    assert_eq!(metric(&r.body, "confab_turn_allocations"), 0.0);
    assert!(metric(&r.body, "process_resident_memory_bytes") > 1e6);
    // Garbage on the media port is counted as dropped.
    let media = common::media_of(&banner);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        udp.send_to(b"\x00\x01 not a packet", media).unwrap();
    }
    let (_a, joined) = join(&base, "metrics").await;
    assert_eq!(joined["type"], "joined");
    let (_b, _) = join(&base, "metrics").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let body = http(&base, "GET", "/metrics", &[], b"").body;
        let dropped: f64 = body.lines().filter(|l| l.starts_with("confab_datagrams_dropped_total{")).map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap()).sum();
        if metric(&body, "confab_participants") == 2.0 && metric(&body, "confab_rooms") == 1.0 && dropped >= 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http(&base, "GET", "/readyz", &[], b"").status, 200);

    // With API keys, a roomList token as Bearer.
    let (_server, _out, base) = common::server(&["--keys", "k: a-secret-of-at-least-thirty-two-characters"]);
    let r = http(&base, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(http(&base, "GET", "/readyz", &[], b"").status, 200, "readiness needs no token");
}

#[tokio::test]
async fn sigterm_drains_tells_the_participants_refuses_joins_and_exits_when_they_leave() {
    let (mut server, _out, base) = common::server(&["--drain-timeout", "30s"]);
    let (mut ws, joined) = join(&base, "drain").await;
    assert_eq!(joined["type"], "joined");
    signal(&server, "TERM");
    let told = next_of(&mut ws, &["draining"]).await;
    assert_eq!(told["seconds"], 30, "{told}");
    assert_eq!(http(&base, "GET", "/readyz", &[], b"").status, 503);
    assert_eq!(metric(&http(&base, "GET", "/metrics", &[], b"").body, "confab_up"), 0.0);
    let (_late, refused) = join(&base, "drain").await;
    assert_eq!(refused["code"], "shutting_down", "{refused}");
    let whip = http(&base, "POST", "/whip/drain", &[("Content-Type", "application/sdp")], b"v=0\r\n");
    assert_eq!(whip.status, 503);
    assert!(whip.header("retry-after").is_some());
    // Still serving the one present, until it leaves.
    assert!(exited(&mut server, Duration::from_millis(500)).is_none(), "exited with a participant present");
    send(&mut ws, serde_json::json!({"type": "leave"})).await;
    let status = exited(&mut server, Duration::from_secs(5)).expect("exits once everyone has left");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_drain_timeout_closes_the_sessions_and_a_second_signal_exits_at_once() {
    let (mut server, _out, base) = common::server(&["--drain-timeout", "1s"]);
    let (mut ws, _) = join(&base, "timeout").await;
    let started = Instant::now();
    signal(&server, "TERM");
    assert_eq!(next_of(&mut ws, &["draining"]).await["seconds"], 1);
    assert_eq!(next_of(&mut ws, &[]).await, serde_json::json!({"close": 1001}));
    assert!(exited(&mut server, Duration::from_secs(5)).is_some_and(|s| s.success()));
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());

    let (mut server, _out, base) = common::server(&["--drain-timeout", "10m"]);
    let (mut ws, _) = join(&base, "twice").await;
    signal(&server, "INT");
    next_of(&mut ws, &["draining"]).await;
    signal(&server, "INT");
    assert!(exited(&mut server, Duration::from_secs(3)).is_some(), "a second Ctrl-C exits at once");

    // With nobody there, the first signal exits.
    let (mut server, _out, _) = common::server(&[]);
    signal(&server, "TERM");
    let status = exited(&mut server, Duration::from_secs(3));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[tokio::test]
async fn room_and_room_count_limits_refuse_with_their_own_codes() {
    let (_server, _out, base) = common::server(&["--max-room-participants", "1", "--max-rooms", "1"]);
    let (_first, joined) = join(&base, "small").await;
    assert_eq!(joined["type"], "joined");
    let (_second, refused) = join(&base, "small").await;
    assert_eq!(refused["code"], "room_full", "{refused}");
    let (_third, refused) = join(&base, "another").await;
    assert_eq!(refused["code"], "server_full", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("rooms"), "{refused}");
    let whip = http(&base, "POST", "/whip/small", &[("Content-Type", "application/sdp")], b"v=0\r\n");
    assert!(whip.status == 503 || whip.status == 400, "{} {}", whip.status, whip.body);
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    use std::io::BufRead;
    let mut child = common::confab()
        .args(["--http", "127.0.0.1:0", "--rtc", "127.0.0.1:0", "--no-turn", "--workers", "1", "--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(log["level"], "WARN", "{log}");
    assert!(log["message"].as_str().unwrap().contains("no API keys are configured"), "{log}");
    assert!(log["timestamp"].is_string(), "{log}");
}
