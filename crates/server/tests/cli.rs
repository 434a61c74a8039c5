//! The `confab` binary's command line, as a user runs it: help, errors, environment variables,
//! and a start that serves.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

mod common;
use common::{Running, confab};
use std::time::Duration;

#[test]
fn help_documents_every_option_and_its_environment_variable() {
    let out = confab().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--config", "CONFAB_CONFIG"),
        ("--http", "CONFAB_HTTP"),
        ("--rtc", "CONFAB_RTC"),
        ("--public-ip", "CONFAB_PUBLIC_IP"),
        ("--workers", "CONFAB_WORKERS"),
        ("--log", "CONFAB_LOG"),
        ("--turn", "CONFAB_TURN"),
        ("--no-turn", "CONFAB_NO_TURN"),
        ("--turn-secret", "CONFAB_TURN_SECRET"),
        ("--turn-user", "CONFAB_TURN_USER"),
        ("--turn-allow-peer", "CONFAB_TURN_ALLOW_PEER"),
        ("--turn-relay-ip", "CONFAB_TURN_RELAY_IP"),
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
        assert!(help.contains(env), "--help does not mention {env}");
    }
}

#[test]
fn bad_values_are_errors_that_name_them() {
    let out = confab().args(["--rtc", "7881"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rtc"), "{err}");

    let out = confab().env("CONFAB_WORKERS", "many").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--workers"), "{err}");

    let out = confab().args(["--log", "confab=loud"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log"));
}

#[test]
fn settings_from_the_environment_start_a_server_that_serves() {
    let mut child = confab()
        .env("CONFAB_HTTP", "127.0.0.1:0")
        .env("CONFAB_RTC", "127.0.0.1:0")
        .env("CONFAB_WORKERS", "3")
        .env("CONFAB_TURN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut url = None;
    let mut media = None;
    let mut turn = None;
    for line in lines.by_ref().take(10) {
        let line = line.unwrap();
        if line.contains("STUN/TURN: UDP 127.0.0.1:") {
            turn = Some(line.clone());
        }
        if let Some(at) = line.find("http://127.0.0.1:") {
            url.get_or_insert_with(|| line[at..].split_whitespace().next().unwrap().to_string());
        }
        if line.contains("Media: UDP") {
            media = Some(line);
            break;
        }
    }
    let url = url.expect("the banner names the page URL");
    let media = media.expect("the banner names the media ports");
    let turn = turn.expect("the banner names the TURN port, before the media line");
    assert!(turn.ends_with("(relays on 127.0.0.1)"), "{turn}");
    assert_eq!(media.matches("127.0.0.1:").count(), 3, "one port per worker: {media}");
    assert!(media.ends_with("(advertised as 127.0.0.1)"), "{media}");

    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut tcp = TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(tcp, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
    drop(server);
}
