//! What the binary's integration tests share: the `confab` command and a server that is killed
//! when dropped.

pub(crate) mod peer;
pub(crate) mod ws;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use std::process::{Child, ChildStdout, Command, Stdio};

/// The `confab` binary, with no CONFAB_* setting of the caller's environment leaking in.
pub(crate) fn confab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFAB_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A running server, killed when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server on loopback ports chosen by the OS (without TURN unless `args` set `--turn`), with
/// `args` added; returns it, its stdout (kept open: a closed pipe would fail its later prints)
/// and its base URL, once its banner (which ends with the media line) is printed.
#[allow(dead_code)]
pub(crate) fn server(args: &[&str]) -> (Running, BufReader<ChildStdout>, String) {
    let (running, stdout, banner) = server_banner(args);
    let url = url_of(&banner);
    (running, stdout, url)
}

/// The base URL a banner names.
pub(crate) fn url_of(banner: &[String]) -> String {
    banner
        .iter()
        .find_map(|line| line.find("http://127.0.0.1:").map(|at| line[at..].split_whitespace().next().unwrap().trim_end_matches('/').to_string()))
        .expect("the banner names the URL")
}

/// The (first) media address a banner names.
#[allow(dead_code)]
pub(crate) fn media_of(banner: &[String]) -> std::net::SocketAddr {
    let line = banner.iter().find(|l| l.contains("Media: UDP ")).expect("a media line");
    line.split("Media: UDP ").nth(1).unwrap().split([',', ' ']).next().unwrap().parse().unwrap()
}

/// [`server`], returning the lines of its banner instead of its URL.
#[allow(dead_code)]
pub(crate) fn server_banner(args: &[&str]) -> (Running, BufReader<ChildStdout>, Vec<String>) {
    server_banner_env(args, &[])
}

/// [`server_banner`], with these environment variables set for the server.
#[allow(dead_code)]
pub(crate) fn server_banner_env(args: &[&str], env: &[(&str, &str)]) -> (Running, BufReader<ChildStdout>, Vec<String>) {
    let mut child = confab()
        .envs(env.iter().copied())
        .args(["--http", "127.0.0.1:0", "--rtc", "127.0.0.1:0", "--workers", "1", "--log", "warn"])
        // Its TURN server only where a test asks for one (`--turn 127.0.0.1:0`).
        .args(if args.iter().any(|a| a.starts_with("--turn")) { &[][..] } else { &["--no-turn"][..] })
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = Vec::new();
    for _ in 0..10 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let end = line.contains("Media: UDP");
        banner.push(line);
        if end {
            break;
        }
    }
    (Running(child), stdout, banner)
}

/// One HTTP/1.1 exchange: (status, headers lower-cased, body).
#[allow(dead_code)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

#[allow(dead_code)]
impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[allow(dead_code)]
pub(crate) fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer before reading a body it refuses: ignore a reset while writing it.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply { status, headers, body: body.to_string() }
}

/// `Bearer` and a token `confab token ARGS` mints with API keys `keys`, as an operator mints one.
#[allow(dead_code)]
pub(crate) fn bearer_token(keys: &str, args: &[&str]) -> String {
    let out = confab().env("CONFAB_KEYS", keys).arg("token").args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim())
}

/// DER bytes as a PEM block labelled `label`.
#[allow(dead_code)]
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}
