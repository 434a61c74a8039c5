//! The `confab` binary: configuration, the media workers, and the HTTP/WebSocket server.

mod admin;
mod assets;
mod auth;
mod config;
mod error;
mod http;
mod ice_tcp;
mod loadtest;
mod metrics;
mod net;
mod places;
mod ratelimit;
mod registry;
mod stats;
mod tls;
mod token;
mod webhook;
mod turn_server;
mod udp;
mod wire;
mod whip;
mod whip_sdp;
mod worker;
mod ws;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Config};
use crate::error::Error;
use crate::http::AppState;
use crate::registry::Registry;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let command = cli.command.take();
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(config::Command::LoadTest(args)) = command {
        return match loadtest::main(args, &config.keys) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(config::Command::Token(args)) = command {
        return match token::main(args, &config.keys) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let filter = EnvFilter::try_new(&config.log);
    let filter = match filter {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("error: --log {:?}: {e}", config.log);
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        config::LogFormat::Text => logs.init(),
        config::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> Result<(), Error> {
    if !config.congestion_control {
        tracing::info!("congestion control is off: every subscriber gets the best layer its tiles can use, whatever its link");
    }
    // Media workers first: each binds its own port and runs on its own thread.
    let (notifier, notices) = webhook::channel();
    let notifier = (!config.webhooks.is_empty()).then_some(notifier);
    let mut workers = Vec::with_capacity(config.workers);
    for i in 0..config.workers {
        let port = if config.rtc.port() == 0 { 0 } else { config.rtc.port() + i as u16 };
        let options = worker::WorkerOptions {
            public_ips: &config.public_ips,
            congestion_control: config.congestion_control,
            ice_tcp: config.ice_tcp,
            webhooks: notifier.clone(),
        };
        workers.push(worker::spawn(i, SocketAddr::new(config.rtc.ip(), port), options)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|source| Error::Bind { what: "HTTP", addr: config.http, source })?;
        let http_addr = listener.local_addr()?;
        // HTTPS: HTTP/1.1 over TLS (axum serves HTTP/1 here), WebSocket upgrades included.
        let alpn: &[&[u8]] = &[b"http/1.1"];
        let (acceptor, self_signed) = match &config.http_tls {
            None => (None, None),
            Some(config::HttpTls::Files(cert, key)) => (Some(tls::acceptor_from_pem(cert, key, alpn)?), None),
            Some(config::HttpTls::SelfSigned) => {
                let mut ips = net::local_ips(http_addr.is_ipv6());
                ips.extend(config.public_ips.iter().copied());
                let (acceptor, fingerprint) = tls::self_signed(tls::machine_names(&ips), alpn)?;
                (Some(acceptor), Some(fingerprint))
            }
        };
        let turn = match &config.turn {
            Some(settings) => turn_server::start(settings, &config.public_ips).await?,
            None => None,
        };
        if !config.webhooks.is_empty() {
            tokio::spawn(webhook::run(notices, config.webhooks.clone(), config.keys.clone()));
        }
        let (shutdown, _) = watch::channel(false);
        let (drain_tx, _) = watch::channel(false);
        let state = Arc::new(AppState {
            registry: Registry::new(
                workers.len(),
                registry::Limits {
                    participants: config.max_participants,
                    per_room: config.max_room_participants,
                    rooms: config.max_rooms,
                    mesh: config.mesh_max,
                },
                config.room_mode,
            ),
            workers,
            shutdown,
            started: std::time::Instant::now(),
            http_sessions: Default::default(),
            turn,
            keys: config.keys.clone(),
            drain: drain_tx,
            drain_timeout: config.drain_timeout,
            reconnect_grace: config.reconnect_grace,
            places: Default::default(),
            join_rate: ratelimit::JoinRate::new(config.join_rate),
        });
        if !state.keys.enabled() {
            tracing::warn!("no API keys are configured: anyone who can reach this server can join any room (set CONFAB_KEYS, see the README)");
        }
        let signals = Signals::new();
        banner(http_addr, acceptor.is_some(), self_signed.as_deref(), &state);
        // Rooms created through the admin API close after their empty timeout.
        let sweep = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                for room in sweep.registry.expire(std::time::Instant::now()) {
                    tracing::info!(%room, "room closed: empty for its empty timeout");
                }
            }
        });
        let app = http::router(state.clone());
        let stop = state.clone();
        let stopped = async move {
            drain(&stop, signals).await;
            tracing::info!("shutting down");
            let _ = stop.shutdown.send(true);
        };
        let app = app.into_make_service_with_connect_info::<http::ClientAddr>();
        match acceptor {
            Some(acceptor) => axum::serve(tls::TlsListener::new(listener, acceptor)?, app).with_graceful_shutdown(stopped).await?,
            None => axum::serve(listener, app).with_graceful_shutdown(stopped).await?,
        }
        Ok(())
    })
}

/// What a person needs to know after `cargo run`: where to point the browser.
fn banner(http: SocketAddr, tls: bool, self_signed: Option<&str>, state: &AppState) {
    let port = http.port();
    let scheme = if tls { "https" } else { "http" };
    println!("confab {} is running.", env!("CARGO_PKG_VERSION"));
    if http.ip().is_unspecified() {
        println!("  Open {scheme}://localhost:{port}/ in two browser tabs to start a call.");
        let lan: Vec<IpAddr> = net::local_ips(http.is_ipv6()).into_iter().filter(|ip| !ip.is_loopback()).collect();
        for ip in lan {
            let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
            if tls {
                println!("  On your network: https://{host}:{port}/");
            } else {
                println!("  On your network: http://{host}:{port}/ (browsers allow the camera only over HTTPS or on localhost: see --tls-self-signed)");
            }
        }
    } else {
        let host = if http.is_ipv6() { format!("[{}]", http.ip()) } else { http.ip().to_string() };
        println!("  Open {scheme}://{host}:{port}/ in two browser tabs to start a call.");
    }
    if let Some(fingerprint) = self_signed {
        println!("  The certificate is self-signed: browsers ask to accept it once (SHA-256 {fingerprint}).");
    }
    if state.keys.enabled() {
        let names: Vec<&str> = state.keys.names().collect();
        println!("  Access tokens required (API keys: {}); mint one with `confab token --room ROOM --identity ID`.", names.join(", "));
    } else {
        println!("  Open mode: anyone who can reach this server can join (no API keys configured).");
    }
    // Before the media line, with which the banner ends.
    if let Some(turn) = &state.turn {
        let tls = turn.tls.map_or(String::new(), |a| format!(", TLS {a}"));
        println!("  STUN/TURN: UDP {} and TCP{tls} (relays on {})", turn.addr, turn.advertised.ip());
    }
    let media: Vec<String> = state.workers.iter().map(|w| w.addr.to_string()).collect();
    let advertised: Vec<String> = state
        .workers
        .first()
        .map(|w| w.candidates.iter().map(|c| c.ip().to_string()).collect())
        .unwrap_or_default();
    let tcp = if state.workers.iter().all(|w| w.ice_tcp) { " and TCP (ICE-TCP) on the same ports" } else { "" };
    println!("  Media: UDP {}{tcp} (advertised as {})", media.join(", "), advertised.join(", "));
}

/// Wait for a shutdown signal, then drain: refuse new participants, tell those present, and
/// return when they have all left, when the drain timeout passes, or at a second signal.
async fn drain(state: &AppState, mut signals: Signals) {
    signals.next().await;
    let present = state.registry.participants();
    if present == 0 {
        return;
    }
    let timeout = state.drain_timeout;
    tracing::warn!(
        "draining: {present} participants present; no new ones are taken; exiting when they have left or in {}s (a second Ctrl-C or SIGTERM exits now)",
        timeout.as_secs()
    );
    let _ = state.drain.send(true);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            () = signals.next() => {
                tracing::warn!("second signal: exiting now");
                return;
            }
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                let present = state.registry.participants();
                if present == 0 {
                    tracing::info!("drained: everyone has left");
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!("drain timeout: closing the sessions of {present} participants");
                    return;
                }
            }
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, as one stream. The handlers are installed when this is made
/// (before the banner, so that a signal sent by whoever read it is never the default action,
/// which would kill the process without a drain).
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals { int: signal(SignalKind::interrupt()).ok(), term: signal(SignalKind::terminate()).ok() }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: Option<&mut tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(self.int.as_mut()) => {}
                () = recv(self.term.as_mut()) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
