//! `confab load-test` against a real `confab` on loopback: headless participants join through
//! the WebSocket, publish synthetic media over UDP, and the figures they report are checked
//! against what was sent.

mod common;
use common::confab;

/// The server for these tests. Its congestion control is off: this checks the tool's accounting
/// against what was sent, and this machine's host pauses it for up to 300 ms now and then, which
/// the estimator takes for congestion and answers by pausing video.
fn server() -> (common::Running, std::io::BufReader<std::process::ChildStdout>, String) {
    common::server(&["--congestion-control", "off"])
}

#[test]
fn load_test_measures_delivery_latency_and_server_cpu() {
    let (_server, _stdout, url) = server();
    let json = std::env::temp_dir().join(format!("confab-load-test-{}.json", std::process::id()));
    let out = confab()
        .args(["load-test", "--url", &url, "--room", "lt", "--publishers", "2", "--subscribers", "3"])
        .args(["--video-bitrate", "500k", "--fps", "15", "--duration", "3s", "--warmup", "1s", "--ramp", "50"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "load-test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("µs per forwarded packet"), "{stdout}");
    assert!(stderr.contains("connected"), "a progress line: {stderr}");

    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).ok();
    let num = |path: &str| doc.pointer(path).and_then(serde_json::Value::as_f64).unwrap_or_else(|| panic!("{path} in {doc}"));
    assert_eq!(num("/participants/connected"), 5.0, "{doc}");
    assert_eq!(num("/participants/failed"), 0.0, "{doc}");
    // Each publisher's audio and video reach the other four participants.
    assert_eq!(num("/received/streams"), 2.0 * 4.0 * 2.0, "{doc}");
    let sent = num("/sent/packets");
    let received = num("/received/packets");
    // 2 publishers x (50 audio + 15 frames x 4-5 video packets) a second, for 3 s.
    assert!(sent > 2.0 * 3.0 * (50.0 + 45.0), "{doc}");
    assert!(received > sent * 4.0 * 0.9 && received < sent * 4.0 * 1.1, "sent {sent}, received {received}: {doc}");
    assert!(num("/received/delivery") > 0.99, "{doc}");
    assert!(num("/received/fanOutDelivery") > 0.9, "{doc}");
    // Latency is measured, in milliseconds, and ordered. How low it is belongs to the benchmarks
    // (docs/benchmarks.md): this is a debug build on a machine whose host pauses it for up to
    // 300 ms now and then, so the bound here only catches a wrong unit or a broken clock.
    let (p50, p99, max) = (num("/latencyMs/p50"), num("/latencyMs/p99"), num("/latencyMs/max"));
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= max && p50 < 1000.0, "{doc}");
    // The server forwarded what the participants received, and says what it cost.
    let forwarded = num("/server/rtpForwarded");
    assert!(forwarded >= received * 0.9, "{doc}");
    assert!(num("/server/usPerForwardedPacket") > 0.0, "{doc}");
}

#[test]
fn load_test_without_a_server_says_so() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = confab().args(["load-test", "--url", &format!("http://127.0.0.1:{port}"), "--duration", "1s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read") && err.contains("/api/v1/stats"), "{err}");
    let out = confab().args(["load-test", "--video-bitrate", "fast"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--video-bitrate"));
}
