//! What the binary's integration tests share: the `confab` command and a server that is killed
//! when dropped.

use std::io::{BufRead, BufReader};
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
    let url = banner
        .iter()
        .find_map(|line| line.find("http://127.0.0.1:").map(|at| line[at..].split_whitespace().next().unwrap().trim_end_matches('/').to_string()))
        .expect("the banner names the URL");
    (running, stdout, url)
}

/// [`server`], returning the lines of its banner instead of its URL.
#[allow(dead_code)]
pub(crate) fn server_banner(args: &[&str]) -> (Running, BufReader<ChildStdout>, Vec<String>) {
    let mut child = confab()
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
