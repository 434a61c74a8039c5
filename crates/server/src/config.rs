//! Settings: command-line flags, environment variables and a TOML file, in that order of
//! precedence, over built-in defaults that need no file at all.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::error::Error;

const DEFAULT_HTTP: &str = "0.0.0.0:7880";
const DEFAULT_RTC: &str = "0.0.0.0:7881";
const DEFAULT_TURN: &str = "0.0.0.0:3478";

/// confab: a self-hosted WebRTC communication system (video meetings, calls, live streams) in one
/// binary.
///
/// With no options it serves the web meeting client on http://localhost:7880/ and media on UDP
/// port 7881 and up. Every option can also be set by an environment variable (shown below) or in
/// a TOML file given with --config, using the option's long name as the key (for example
/// `http = "0.0.0.0:80"`, `public-ip = ["203.0.113.7"]`). Flags override the environment, which
/// overrides the file.
#[derive(Debug, Parser)]
#[command(name = "confab", version, about, long_about, max_term_width = 100)]
pub(crate) struct Cli {
    /// Read settings from this TOML file.
    #[arg(long, env = "CONFAB_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address for the web client, WebSocket signaling (/ws) and HTTP APIs [default: 0.0.0.0:7880].
    #[arg(long, env = "CONFAB_HTTP", value_name = "ADDR")]
    http: Option<SocketAddr>,

    /// UDP address media is served on. With several media workers they use consecutive ports from
    /// this one [default: 0.0.0.0:7881].
    #[arg(long, env = "CONFAB_RTC", value_name = "ADDR")]
    rtc: Option<SocketAddr>,

    /// An address to advertise in ICE candidates, e.g. the server's public IP behind a 1:1 NAT.
    /// Repeatable (or comma-separated in the environment) [default: the addresses of the local
    /// interfaces, loopback included].
    #[arg(long = "public-ip", env = "CONFAB_PUBLIC_IP", value_name = "IP", value_delimiter = ',')]
    public_ip: Vec<IpAddr>,

    /// Number of media workers: threads with one UDP port each; a room lives on one worker
    /// [default: one per CPU core].
    #[arg(long, env = "CONFAB_WORKERS", value_name = "N")]
    workers: Option<NonZeroUsize>,

    /// Log filter, e.g. `info`, `debug` or `confab=debug,str0m=warn` [default: info].
    #[arg(long, env = "CONFAB_LOG", value_name = "FILTER")]
    log: Option<String>,

    /// Log lines as `text` for people or `json` (one object per line: timestamp, level, target,
    /// fields) for a log collector [default: text].
    #[arg(long, env = "CONFAB_LOG_FORMAT", value_name = "TEXT|JSON")]
    log_format: Option<LogFormat>,

    /// The most participants (WebSocket, WHIP and WHEP alike) the server takes at once; one more
    /// is refused (`server_full`, HTTP 503) [default: no limit].
    #[arg(long, env = "CONFAB_MAX_PARTICIPANTS", value_name = "N")]
    max_participants: Option<NonZeroUsize>,

    /// The most participants one room takes; one more gets `room_full` (HTTP 503 for WHIP and
    /// WHEP) [default: no limit].
    #[arg(long, env = "CONFAB_MAX_ROOM_PARTICIPANTS", value_name = "N")]
    max_room_participants: Option<NonZeroUsize>,

    /// Joins (WebSocket, WHIP and WHEP) one client address may make per minute; more get
    /// `rate_limited` (HTTP 429). Loopback addresses (a local reverse proxy, the load tester) are
    /// not limited; behind a proxy on another machine every client has its address: raise it,
    /// or 0 for no limit [default: 60].
    #[arg(long, env = "CONFAB_JOIN_RATE", value_name = "N")]
    join_rate: Option<u32>,

    /// The most rooms open at once; a join that would open one more gets `server_full`
    /// [default: no limit].
    #[arg(long, env = "CONFAB_MAX_ROOMS", value_name = "N")]
    max_rooms: Option<NonZeroUsize>,

    /// How media travels in a room that opens without a mode of its own (the join's `mode`, or
    /// the admin API's): `sfu` through the server; `p2p` directly between every pair of
    /// participants, the server relaying their signaling only; `auto` peer-to-peer while two are
    /// in the room, through the server from the third on [default: sfu].
    #[arg(long, env = "CONFAB_ROOM_MODE", value_name = "SFU|P2P|AUTO")]
    room_mode: Option<ModeArg>,

    /// The most participants of a peer-to-peer (`p2p`) room: each sends its media to every other,
    /// so a mesh grows heavy fast; one more gets `room_full` [default: 4].
    #[arg(long, env = "CONFAB_MESH_MAX", value_name = "N")]
    mesh_max: Option<NonZeroUsize>,

    /// Estimate each subscriber's downlink and fit its video to it: layers, pausing, pacing
    /// (`on`). `off` forwards the best layer each tile can use whatever the link, as on a LAN
    /// that always has room; the load test uses it to measure forwarding alone [default: on].
    #[arg(long, env = "CONFAB_CONGESTION_CONTROL", value_name = "ON|OFF")]
    congestion_control: Option<Toggle>,

    /// Do not accept ICE over TCP. By default each media worker also listens on TCP at its UDP
    /// port's number and advertises it as a passive ICE-TCP candidate (RFC 6544), so clients whose
    /// UDP is blocked reach the SFU directly; UDP stays preferred.
    #[arg(long, env = "CONFAB_NO_ICE_TCP")]
    no_ice_tcp: bool,

    /// UDP address of the built-in STUN/TURN server [default: 0.0.0.0:3478; if that port is
    /// taken, confab runs without TURN and says so].
    #[arg(long, env = "CONFAB_TURN", value_name = "ADDR")]
    turn: Option<SocketAddr>,

    /// Run without the built-in STUN/TURN server.
    #[arg(long, env = "CONFAB_NO_TURN")]
    no_turn: bool,

    /// The shared secret of TURN REST credentials (coturn's `use-auth-secret`): other services
    /// can mint `expiry:user` usernames for confab's TURN with it [default: a random secret,
    /// known only to this process, which still hands every joining client its credentials].
    #[arg(long, env = "CONFAB_TURN_SECRET", value_name = "SECRET", hide_env_values = true)]
    turn_secret: Option<String>,

    /// A static TURN user, `NAME:PASSWORD`. Repeatable.
    #[arg(long = "turn-user", env = "CONFAB_TURN_USER", value_name = "NAME:PASSWORD", value_delimiter = ',', hide_env_values = true)]
    turn_user: Vec<String>,

    /// A network TURN relays may reach although it is internal (loopback, private, link-local),
    /// e.g. `10.0.0.0/8`. Repeatable. By default relays reach public addresses only.
    #[arg(long = "turn-allow-peer", env = "CONFAB_TURN_ALLOW_PEER", value_name = "CIDR", value_delimiter = ',')]
    turn_allow_peer: Vec<turn::Cidr>,

    /// The address relays are opened on and advertised as [default: the TURN address if it is
    /// specific, else the first --public-ip, else the first non-loopback local address].
    #[arg(long, env = "CONFAB_TURN_RELAY_IP", value_name = "IP")]
    turn_relay_ip: Option<IpAddr>,

    /// The public address of the relays when confab is behind a 1:1 NAT: clients are told their
    /// relays are there [default: the relay address itself].
    #[arg(long, env = "CONFAB_TURN_PUBLIC_IP", value_name = "IP")]
    turn_public_ip: Option<IpAddr>,

    /// The UDP ports relays are opened on, `LO-HI` (open them in the firewall) [default: any port
    /// the OS gives].
    #[arg(long, env = "CONFAB_TURN_RELAY_PORTS", value_name = "LO-HI")]
    turn_relay_ports: Option<PortRange>,

    /// The most one TURN allocation relays, in bits per second (both directions); what is over
    /// is dropped, e.g. `4M` [default: no limit].
    #[arg(long, env = "CONFAB_TURN_MAX_BITRATE", value_name = "BPS", value_parser = parse_bitrate)]
    turn_max_bitrate: Option<u64>,

    /// TCP address of TURN over TLS (`turns:`), which gets clients through firewalls that pass only
    /// TLS; uses the certificate of --tls-cert and --tls-key [default: off].
    #[arg(long, env = "CONFAB_TURN_TLS", value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    turn_tls: Option<SocketAddr>,

    /// A TLS certificate chain, PEM: with --tls-key, the HTTP port serves HTTPS and WSS (browsers
    /// give the camera only to secure pages), and --turn-tls uses it.
    #[arg(long, env = "CONFAB_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert, PEM.
    #[arg(long, env = "CONFAB_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Serve HTTPS and WSS with a certificate made at start for this machine's names (localhost,
    /// its host name and addresses): a phone on the LAN gets a secure page, once its user accepts
    /// the certificate [default: plain HTTP, or HTTPS with --tls-cert].
    #[arg(long, env = "CONFAB_TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
    tls_self_signed: bool,

    /// API keys for access tokens: `KEY: SECRET` pairs, separated by commas or new lines (in the
    /// config file, a `[keys]` table). With keys, nothing joins, publishes or administers without
    /// a token signed by one of them (mint one with `confab token`); a secret has at least 32
    /// characters [default: none: open mode, anyone who can reach the server can join].
    #[arg(long, env = "CONFAB_KEYS", value_name = "KEY: SECRET", hide_env_values = true)]
    keys: Option<String>,

    /// A URL to POST room events to (room started/finished, participant joined/left, track
    /// published/unpublished), signed with the first API key (--keys is needed); `http://` or
    /// `https://` (the system's root certificates). Repeatable (comma-separated in the environment).
    #[arg(long = "webhook", env = "CONFAB_WEBHOOKS", value_name = "URL", value_delimiter = ',')]
    webhook: Vec<crate::webhook::Endpoint>,

    /// On SIGTERM (or a first Ctrl-C) confab drains: it refuses new participants, tells those
    /// present, and exits once they have left or after this long, e.g. `10m`. A second signal
    /// exits at once [default: 60s].
    #[arg(long, env = "CONFAB_DRAIN_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    drain_timeout: Option<std::time::Duration>,

    /// How long a participant whose WebSocket was lost (a network change, a laptop lid) keeps
    /// its place, its media still flowing, for its client to reconnect; the others see it as
    /// reconnecting meanwhile. `0s`: it leaves at once [default: 20s].
    #[arg(long, env = "CONFAB_RECONNECT_GRACE", value_name = "DURATION", value_parser = parse_duration)]
    reconnect_grace: Option<std::time::Duration>,

    /// Something else than serving.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Put a running confab under load with headless participants (str0m peers sending
    /// synthetic media through its real signaling and media path), and report delivery, loss,
    /// latency and the server's CPU time per forwarded packet.
    LoadTest(crate::loadtest::Args),
    /// Mint an access token (a JWT) for a participant or an administrator, signed with an API
    /// key of --keys / CONFAB_KEYS / the config file, and print it.
    Token(crate::token::Args),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// An option that is `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Toggle {
    On,
    Off,
}

/// `--room-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ModeArg {
    Sfu,
    P2p,
    Auto,
}

impl ModeArg {
    fn mode(self) -> sfu::RoomMode {
        match self {
            ModeArg::Sfu => sfu::RoomMode::Sfu,
            ModeArg::P2p => sfu::RoomMode::P2p,
            ModeArg::Auto => sfu::RoomMode::Auto,
        }
    }
}

/// The most participants of a peer-to-peer room unless `--mesh-max` says: past four, each
/// browser encodes its camera for, and decodes, too many peers.
const DEFAULT_MESH_MAX: usize = 4;

/// The settings as read from a `--config` file. Keys are the long option names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    http: Option<SocketAddr>,
    rtc: Option<SocketAddr>,
    public_ip: Option<Vec<IpAddr>>,
    workers: Option<NonZeroUsize>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    max_participants: Option<NonZeroUsize>,
    max_room_participants: Option<NonZeroUsize>,
    max_rooms: Option<NonZeroUsize>,
    room_mode: Option<ModeArg>,
    mesh_max: Option<NonZeroUsize>,
    join_rate: Option<u32>,
    congestion_control: Option<Toggle>,
    no_ice_tcp: Option<bool>,
    turn: Option<SocketAddr>,
    no_turn: Option<bool>,
    turn_secret: Option<String>,
    turn_user: Option<Vec<String>>,
    turn_allow_peer: Option<Vec<String>>,
    turn_relay_ip: Option<IpAddr>,
    turn_public_ip: Option<IpAddr>,
    turn_relay_ports: Option<String>,
    turn_max_bitrate: Option<u64>,
    turn_tls: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
    keys: Option<std::collections::BTreeMap<String, String>>,
    drain_timeout: Option<String>,
    reconnect_grace: Option<String>,
    webhook: Option<Vec<String>>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) http: SocketAddr,
    pub(crate) rtc: SocketAddr,
    pub(crate) public_ips: Vec<IpAddr>,
    pub(crate) workers: usize,
    pub(crate) log: String,
    pub(crate) log_format: LogFormat,
    pub(crate) max_participants: usize,
    pub(crate) max_room_participants: usize,
    pub(crate) max_rooms: usize,
    /// The mode of a room that opens without one.
    pub(crate) room_mode: sfu::RoomMode,
    /// The most participants of a peer-to-peer room.
    pub(crate) mesh_max: usize,
    /// Joins per minute per client address; 0: no limit.
    pub(crate) join_rate: u32,
    pub(crate) congestion_control: bool,
    /// Media workers accept ICE over TCP on their port.
    pub(crate) ice_tcp: bool,
    /// The STUN/TURN server, unless switched off.
    pub(crate) turn: Option<TurnSettings>,
    /// API keys; none: open mode.
    pub(crate) keys: crate::auth::Keys,
    /// How long a drain waits for the participants to leave.
    pub(crate) drain_timeout: std::time::Duration,
    /// How long a participant whose WebSocket was lost keeps its place.
    pub(crate) reconnect_grace: std::time::Duration,
    /// HTTPS on the HTTP port, if asked for.
    pub(crate) http_tls: Option<HttpTls>,
    /// Where room events are POSTed.
    pub(crate) webhooks: Vec<crate::webhook::Endpoint>,
}

/// Where the HTTP port's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpTls {
    /// These PEM files: certificate chain, key.
    Files(PathBuf, PathBuf),
    /// Made at start.
    SelfSigned,
}

/// The built-in STUN/TURN server's settings.
#[derive(Debug, Clone)]
pub(crate) struct TurnSettings {
    /// Where it listens (UDP).
    pub(crate) addr: SocketAddr,
    /// Whether `addr` is the default: a port in use there is a warning, not an error.
    pub(crate) default_addr: bool,
    /// The REST secret, if configured.
    pub(crate) secret: Option<Vec<u8>>,
    /// Static users: (name, password).
    pub(crate) users: Vec<(String, String)>,
    /// Internal networks relays may reach.
    pub(crate) allow_peers: Vec<turn::Cidr>,
    /// The relay address, if configured.
    pub(crate) relay_ip: Option<IpAddr>,
    /// The relays' public address, if configured.
    pub(crate) public_ip: Option<IpAddr>,
    /// The relays' port range, if configured.
    pub(crate) relay_ports: Option<PortRange>,
    /// The bandwidth limit of one allocation, bit/s.
    pub(crate) max_bitrate: Option<u64>,
    /// TURN over TLS: its address, certificate chain and key files.
    pub(crate) tls: Option<(SocketAddr, PathBuf, PathBuf)>,
}

/// A range of ports, `LO-HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    pub(crate) lo: u16,
    pub(crate) hi: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<PortRange, String> {
        let bad = || format!("{s:?}: expected LO-HI, two ports with LO <= HI, e.g. 49152-65535");
        let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
        let (lo, hi) = (lo.trim().parse::<u16>().map_err(|_| bad())?, hi.trim().parse::<u16>().map_err(|_| bad())?);
        if lo == 0 || lo > hi {
            return Err(bad());
        }
        Ok(PortRange { lo, hi })
    }
}

/// A duration: a number of seconds, or a number with a unit `ms`, `s`, `m` (`min`), `h` or `d`,
/// e.g. `500ms`, `30s`, `2m`, `6h`, `365d`; at most 400 days.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 2m, 500ms, 6h, 2d)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86_400.0,
        _ => return Err(format!("{s:?}: unit must be ms, s, m, h or d")),
    };
    if !(0.0..=400.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s}: between 0 and 400d"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A bitrate: a number of bit/s, with an optional `k` or `M` suffix.
fn parse_bitrate(s: &str) -> Result<u64, String> {
    let (digits, scale) = match s.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1_000),
        None => match s.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (s, 1),
        },
    };
    digits.parse::<u64>().ok().filter(|n| *n > 0).map(|n| n * scale).ok_or_else(|| format!("{s:?}: expected a bitrate such as 4M, 800k or 500000"))
}

impl Config {
    /// Resolve the settings of a parsed command line.
    pub(crate) fn from_cli(cli: Cli) -> Result<Config, Error> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let default_addr = |s: &str| s.parse::<SocketAddr>().unwrap_or_else(|_| unreachable!());
        let public_ips = if cli.public_ip.is_empty() { file.public_ip.unwrap_or_default() } else { cli.public_ip };
        for ip in &public_ips {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(Error::Config(format!("--public-ip {ip}: not an address peers can send to")));
            }
        }
        let workers = cli
            .workers
            .or(file.workers)
            .map(NonZeroUsize::get)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
        let rtc = cli.rtc.or(file.rtc).unwrap_or_else(|| default_addr(DEFAULT_RTC));
        if rtc.port() != 0 && usize::from(rtc.port()) + workers - 1 > usize::from(u16::MAX) {
            return Err(Error::Config(format!(
                "--rtc {rtc}: {workers} workers need ports {} to {}, beyond 65535",
                rtc.port(),
                usize::from(rtc.port()) + workers - 1
            )));
        }
        let tls_files = match (cli.tls_cert.or(file.tls_cert), cli.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(Error::Config("--tls-cert and --tls-key go together".into())),
        };
        let http_tls = match (cli.tls_self_signed || file.tls_self_signed == Some(true), &tls_files) {
            (true, Some(_)) => return Err(Error::Config("--tls-self-signed and --tls-cert exclude each other".into())),
            (true, None) => Some(HttpTls::SelfSigned),
            (false, files) => files.clone().map(|(cert, key)| HttpTls::Files(cert, key)),
        };
        let turn = if cli.no_turn || file.no_turn == Some(true) {
            None
        } else {
            let users = if cli.turn_user.is_empty() { file.turn_user.unwrap_or_default() } else { cli.turn_user };
            let users = users
                .into_iter()
                .map(|u| match u.split_once(':') {
                    Some((name, password)) if !name.is_empty() && !password.is_empty() => Ok((name.to_string(), password.to_string())),
                    _ => Err(Error::Config(format!("--turn-user {u:?}: expected NAME:PASSWORD"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let allow_peers = if cli.turn_allow_peer.is_empty() {
                file.turn_allow_peer
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.parse().map_err(|e| Error::Config(format!("turn-allow-peer: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                cli.turn_allow_peer
            };
            let addr = cli.turn.or(file.turn);
            Some(TurnSettings {
                addr: addr.unwrap_or_else(|| default_addr(DEFAULT_TURN)),
                default_addr: addr.is_none(),
                secret: cli.turn_secret.or(file.turn_secret).map(String::into_bytes),
                users,
                allow_peers,
                relay_ip: cli.turn_relay_ip.or(file.turn_relay_ip),
                public_ip: cli.turn_public_ip.or(file.turn_public_ip),
                relay_ports: match cli.turn_relay_ports {
                    Some(r) => Some(r),
                    None => file.turn_relay_ports.map(|r| r.parse().map_err(|e| Error::Config(format!("turn-relay-ports: {e}")))).transpose()?,
                },
                max_bitrate: cli.turn_max_bitrate.or(file.turn_max_bitrate),
                tls: match (cli.turn_tls.or(file.turn_tls), tls_files) {
                    (Some(addr), Some((cert, key))) => Some((addr, cert, key)),
                    (Some(_), None) => return Err(Error::Config("--turn-tls needs --tls-cert and --tls-key".into())),
                    (None, _) => None,
                },
            })
        };
        let keys = match (cli.keys, file.keys) {
            (Some(pairs), _) => crate::auth::Keys::parse_pairs(&pairs).map_err(|e| Error::Config(format!("--keys: {e}")))?,
            (None, Some(map)) => crate::auth::Keys::new(map).map_err(|e| Error::Config(format!("keys: {e}")))?,
            (None, None) => crate::auth::Keys::default(),
        };
        let drain_timeout = match (cli.drain_timeout, file.drain_timeout) {
            (Some(d), _) => d,
            (None, Some(s)) => parse_duration(&s).map_err(|e| Error::Config(format!("drain-timeout: {e}")))?,
            (None, None) => std::time::Duration::from_secs(60),
        };
        let reconnect_grace = match (cli.reconnect_grace, file.reconnect_grace) {
            (Some(d), _) => d,
            (None, Some(s)) => parse_duration(&s).map_err(|e| Error::Config(format!("reconnect-grace: {e}")))?,
            (None, None) => std::time::Duration::from_secs(20),
        };
        let webhooks = if cli.webhook.is_empty() {
            file.webhook.unwrap_or_default().iter().map(|u| u.parse().map_err(|e| Error::Config(format!("webhook: {e}")))).collect::<Result<Vec<_>, _>>()?
        } else {
            cli.webhook
        };
        if !webhooks.is_empty() && !keys.enabled() {
            return Err(Error::Config("--webhook: webhooks are signed with an API key: configure --keys (CONFAB_KEYS) too".into()));
        }
        Ok(Config {
            keys,
            drain_timeout,
            reconnect_grace,
            http_tls,
            webhooks,
            turn,
            http: cli.http.or(file.http).unwrap_or_else(|| default_addr(DEFAULT_HTTP)),
            rtc,
            public_ips,
            workers,
            log: cli.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_format: cli.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            max_participants: cli.max_participants.or(file.max_participants).map_or(usize::MAX, NonZeroUsize::get),
            max_room_participants: cli.max_room_participants.or(file.max_room_participants).map_or(usize::MAX, NonZeroUsize::get),
            max_rooms: cli.max_rooms.or(file.max_rooms).map_or(usize::MAX, NonZeroUsize::get),
            room_mode: cli.room_mode.or(file.room_mode).map_or(sfu::RoomMode::Sfu, ModeArg::mode),
            mesh_max: cli.mesh_max.or(file.mesh_max).map_or(DEFAULT_MESH_MAX, NonZeroUsize::get),
            join_rate: cli.join_rate.or(file.join_rate).unwrap_or(60),
            congestion_control: cli.congestion_control.or(file.congestion_control) != Some(Toggle::Off),
            ice_tcp: !(cli.no_ice_tcp || file.no_ice_tcp == Some(true)),
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("--config {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("--config {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("confab").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::from_cli(cli).map_err(|e| e.to_string())
    }

    fn file(contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("confab-test-{}.toml", fastrand::u64(..)));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn defaults_need_no_file() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.http, "0.0.0.0:7880".parse().unwrap());
        assert_eq!(c.rtc, "0.0.0.0:7881".parse().unwrap());
        assert!(c.public_ips.is_empty());
        assert!(c.workers >= 1);
        assert_eq!(c.log, "info");
        assert!(c.congestion_control);
        assert_eq!(c.max_participants, usize::MAX);
        assert_eq!(parse(&["--max-participants", "40"]).unwrap().max_participants, 40);
        let turn = c.turn.unwrap();
        assert_eq!((turn.addr, turn.default_addr), ("0.0.0.0:3478".parse().unwrap(), true));
        assert!(turn.secret.is_none() && turn.users.is_empty() && turn.allow_peers.is_empty());
    }

    #[test]
    fn turn_settings() {
        assert!(parse(&["--no-turn"]).unwrap().turn.is_none());
        let c = parse(&["--turn", "127.0.0.1:0", "--turn-secret", "s3", "--turn-user", "ada:pw", "--turn-allow-peer", "127.0.0.0/8"]).unwrap();
        let turn = c.turn.unwrap();
        assert_eq!((turn.addr, turn.default_addr), ("127.0.0.1:0".parse().unwrap(), false));
        assert_eq!(turn.secret.as_deref(), Some(&b"s3"[..]));
        assert_eq!(turn.users, vec![("ada".to_string(), "pw".to_string())]);
        assert_eq!(turn.allow_peers, vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(parse(&["--turn-user", "nopassword"]).unwrap_err().contains("NAME:PASSWORD"));
        assert!(parse(&["--turn-allow-peer", "10.0.0.0/40"]).is_err());
        let c = parse(&["--turn-relay-ports", "50000-50100", "--turn-public-ip", "203.0.113.7", "--turn-max-bitrate", "4M"]).unwrap();
        let turn = c.turn.unwrap();
        assert_eq!(turn.relay_ports, Some(PortRange { lo: 50000, hi: 50100 }));
        assert_eq!(turn.public_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(turn.max_bitrate, Some(4_000_000));
        for bad in [["--turn-relay-ports", "5000"], ["--turn-relay-ports", "6000-5000"], ["--turn-max-bitrate", "fast"]] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
        let path = file("no-turn = true\n");
        assert!(parse(&["--config", path.to_str().unwrap()]).unwrap().turn.is_none());
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["7 parsecs", "-1s", "6w", "h", "", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_keys_from_the_flag_or_the_file() {
        assert!(!parse(&[]).unwrap().keys.enabled(), "open mode by default");
        let secret = "s".repeat(32);
        let c = parse(&["--keys", &format!("k1: {secret}, k2: {secret}")]).unwrap();
        assert_eq!(c.keys.names().collect::<Vec<_>>(), ["k1", "k2"]);
        let path = file(&format!("[keys]\nfilekey = \"{secret}\"\n"));
        let p = path.to_str().unwrap();
        assert_eq!(parse(&["--config", p]).unwrap().keys.names().collect::<Vec<_>>(), ["filekey"]);
        assert_eq!(parse(&["--config", p, "--keys", &format!("k: {secret}")]).unwrap().keys.names().collect::<Vec<_>>(), ["k"]);
        std::fs::write(&path, "[keys]\nfilekey = \"short\"\n").unwrap();
        let err = parse(&["--config", p]).unwrap_err();
        assert!(err.contains("keys") && err.contains("at least 32"), "{err}");
        std::fs::remove_file(path).ok();
        let err = parse(&["--keys", "k1 secret"]).unwrap_err();
        assert!(err.contains("--keys") && err.contains("KEY: SECRET"), "{err}");
    }

    #[test]
    fn flags_override_the_file() {
        let path = file("http = \"127.0.0.1:9000\"\nrtc = \"127.0.0.1:9001\"\npublic-ip = [\"203.0.113.7\"]\nworkers = 3\ncongestion-control = \"off\"\n");
        let p = path.to_str().unwrap();
        let c = parse(&["--config", p]).unwrap();
        assert_eq!(c.http, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.public_ips, vec!["203.0.113.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.workers, 3);
        assert!(!c.congestion_control);
        assert!(parse(&["--config", p, "--congestion-control", "on"]).unwrap().congestion_control);
        let c = parse(&["--config", p, "--http", "127.0.0.1:9100", "--public-ip", "198.51.100.1", "--public-ip", "::1"]).unwrap();
        assert_eq!(c.http, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(c.rtc, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(c.public_ips.len(), 2);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        let err = parse(&["--http", "localhost"]).unwrap_err();
        assert!(err.contains("--http"), "{err}");
        let err = parse(&["--workers", "0"]).unwrap_err();
        assert!(err.contains("--workers"), "{err}");
        let err = parse(&["--public-ip", "0.0.0.0"]).unwrap_err();
        assert!(err.contains("--public-ip"), "{err}");
        let err = parse(&["--congestion-control", "maybe"]).unwrap_err();
        assert!(err.contains("--congestion-control"), "{err}");
        let err = parse(&["--bogus"]).unwrap_err();
        assert!(err.contains("--bogus"), "{err}");
        let err = parse(&["--rtc", "0.0.0.0:65535", "--workers", "2"]).unwrap_err();
        assert!(err.contains("--rtc"), "{err}");

        let path = file("htp = \"127.0.0.1:9000\"\n");
        let err = parse(&["--config", path.to_str().unwrap()]).unwrap_err();
        assert!(err.contains("htp"), "unknown key not named: {err}");
        std::fs::write(&path, "http = \"nowhere\"\n").unwrap();
        let err = parse(&["--config", path.to_str().unwrap()]).unwrap_err();
        assert!(err.contains("http") && err.contains("--config"), "{err}");
        std::fs::remove_file(path).ok();
        let err = parse(&["--config", "/nonexistent/confab.toml"]).unwrap_err();
        assert!(err.contains("/nonexistent/confab.toml"), "{err}");
    }
}
