//! A media worker: one thread, one UDP socket (and an ICE-TCP listener on the same port number),
//! one SFU core. It is the thin driver of the sans-IO core (see the driving contract on
//! `sfu::Sfu`): datagrams, TCP frames, signaling commands and timeouts in; datagrams, frames and
//! per-participant messages out.

use std::future::pending;
use std::net::SocketAddr;
use std::time::Instant;

use rustc_hash::FxHashMap;
use sfu::{Command, Event, LeaveReason, ParticipantId, Sfu, SfuConfig, Signal};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::ice_tcp::{IceTcp, Inbound};
use crate::udp::MediaSocket;

/// Commands queued per worker before signaling waits.
const COMMAND_QUEUE: usize = 4096;
/// Messages queued per participant; a participant that does not read them is removed.
pub(crate) const SESSION_QUEUE: usize = 1024;

/// What signaling asks of a worker.
#[derive(Debug)]
pub(crate) enum ToWorker {
    /// A participant joins; its messages go to `session`.
    Join {
        participant: ParticipantId,
        room: String,
        name: String,
        role: sfu::Role,
        grants: sfu::Grants,
        /// The room's mode, if this join opens it.
        mode: sfu::RoomMode,
        session: mpsc::Sender<ToSession>,
    },
    /// Any other command; `request` names the message it came from, for error replies.
    Command { request: &'static str, command: Command },
    /// The core's counters, and the socket's.
    Stats(oneshot::Sender<WorkerStats>),
    /// The rooms and their participants (the admin API).
    Rooms(oneshot::Sender<Vec<sfu::RoomInfo>>),
    /// A command of the admin API, whose result goes back to it.
    Admin { command: Command, reply: oneshot::Sender<Result<(), sfu::Error>> },
}

/// What a worker tells one participant's session.
#[derive(Debug)]
pub(crate) enum ToSession {
    /// A message for the client.
    Signal(Signal),
    /// A command of the client was refused.
    Refused { request: &'static str, error: sfu::Error },
    /// The core removed the participant.
    Removed(LeaveReason),
}

/// Counters of one worker.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkerStats {
    pub(crate) sfu: sfu::Stats,
    /// Tracks published now.
    pub(crate) tracks: u64,
    pub(crate) send_dropped: u64,
    pub(crate) downlinks: Vec<sfu::DownlinkStats>,
}

/// A running worker.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub(crate) tx: mpsc::Sender<ToWorker>,
    pub(crate) addr: SocketAddr,
    pub(crate) candidates: Vec<SocketAddr>,
    /// Whether it takes ICE over TCP (on `addr`'s port).
    pub(crate) ice_tcp: bool,
}

/// A worker's sockets: UDP, and TCP when it has ICE-TCP.
struct Sockets {
    udp: MediaSocket,
    tcp: Option<IceTcp>,
}

impl Sockets {
    fn send(&mut self, t: sfu::Transmit) {
        match (t.transport, &mut self.tcp) {
            (sfu::Transport::Tcp, Some(tcp)) => tcp.send(t),
            (sfu::Transport::Tcp, None) => {}
            _ => self.udp.send(t),
        }
    }

    /// Send what is queued.
    fn flush(&mut self) {
        self.udp.flush();
    }

    fn send_dropped(&self) -> u64 {
        self.udp.stats.send_dropped + self.tcp.as_ref().map_or(0, |t| t.send_dropped)
    }
}

/// How a worker is set up.
pub(crate) struct WorkerOptions<'a> {
    pub(crate) public_ips: &'a [std::net::IpAddr],
    pub(crate) congestion_control: bool,
    pub(crate) ice_tcp: bool,
    pub(crate) webhooks: Option<crate::webhook::Notifier>,
}

/// Bind the worker's sockets and start its thread. ICE-TCP listens on the UDP socket's port
/// number; if that TCP port is taken the worker runs without it, and says so.
pub(crate) fn spawn(index: usize, bind: SocketAddr, options: WorkerOptions<'_>) -> Result<Worker, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let udp = runtime.block_on(async { MediaSocket::bind(bind, options.public_ips) })?;
    let addr = udp.local_addr()?;
    let candidates = udp.advertised.candidates();
    let (tcp, inbound) = match options.ice_tcp {
        false => (None, None),
        true => match runtime.block_on(async { IceTcp::bind(addr, udp.advertised.clone()) }) {
            Ok((tcp, inbound)) => (Some(tcp), Some(inbound)),
            Err(e) => {
                tracing::warn!("ICE over TCP is off for media worker {index}: {e}");
                (None, None)
            }
        },
    };
    let ice_tcp = tcp.is_some();
    let tcp_candidates = if ice_tcp { candidates.clone() } else { Vec::new() };
    let sfu = Sfu::new(SfuConfig {
        congestion_control: options.congestion_control,
        tcp_candidates,
        ..SfuConfig::new(candidates.clone())
    })?;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let webhooks = options.webhooks;
    std::thread::Builder::new()
        .name(format!("media-{index}"))
        .spawn(move || runtime.block_on(run(Sockets { udp, tcp }, sfu, rx, webhooks, inbound)))?;
    Ok(Worker { tx, addr, candidates, ice_tcp })
}

async fn run(
    mut sockets: Sockets,
    mut sfu: Sfu,
    mut rx: mpsc::Receiver<ToWorker>,
    webhooks: Option<crate::webhook::Notifier>,
    mut inbound: Option<mpsc::Receiver<Inbound>>,
) {
    let mut sessions: FxHashMap<ParticipantId, mpsc::Sender<ToSession>> = FxHashMap::default();
    loop {
        let deadline = sfu.poll_timeout();
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => pending().await,
            }
        };
        tokio::select! {
            biased;
            msg = rx.recv() => match msg {
                Some(msg) => command(&mut sfu, &mut sessions, msg, sockets.send_dropped()),
                // Every sender is gone: the server is shutting down.
                None => return,
            },
            ready = sockets.udp.readable() => {
                if let Err(e) = ready {
                    tracing::error!("media socket failed: {e}");
                    return;
                }
                let now = Instant::now();
                if let Err(e) = sockets.udp.recv(|src, dst, data| sfu.handle_datagram(now, src, dst, data)) {
                    tracing::debug!("media socket receive: {e}");
                }
                // A socket that is always readable must not starve the timers (pacing,
                // retransmissions, RTCP, keepalives): they run after every batch when due.
                if sfu.poll_timeout().is_some_and(|t| t <= now) {
                    sfu.handle_timeout(now);
                }
            }
            Some(frame) = next_frame(&mut inbound) => match frame {
                Inbound::Frame { source, destination, data } => sfu.handle_tcp_frame(Instant::now(), source, destination, &data),
                Inbound::Closed(source) => {
                    if let Some(tcp) = sockets.tcp.as_mut() {
                        tcp.closed(source);
                    }
                }
            },
            accepted = accept(sockets.tcp.as_ref()) => match (accepted, sockets.tcp.as_mut()) {
                (Ok((stream, peer)), Some(tcp)) => tcp.add(stream, peer),
                (Err(e), _) => tracing::debug!("ICE-TCP accept: {e}"),
                _ => {}
            },
            () = timeout => sfu.handle_timeout(Instant::now()),
        }
        while let Some(t) = sfu.poll_transmit() {
            sockets.send(t);
        }
        sockets.flush();
        dispatch(&mut sfu, &mut sessions, &mut sockets, webhooks.as_ref());
    }
}

fn command(
    sfu: &mut Sfu,
    sessions: &mut FxHashMap<ParticipantId, mpsc::Sender<ToSession>>,
    msg: ToWorker,
    send_dropped: u64,
) {
    let now = Instant::now();
    match msg {
        ToWorker::Join { participant, room, name, role, grants, mode, session } => {
            sessions.insert(participant.clone(), session);
            let join = Command::Join { participant: participant.clone(), room, name, role, grants, mode };
            if let Err(error) = sfu.handle_command(now, join) {
                if let Some(s) = sessions.remove(&participant) {
                    let _ = s.try_send(ToSession::Refused { request: "join", error });
                }
            }
        }
        ToWorker::Command { request, command } => {
            let participant = participant_of(&command).clone();
            if let Err(error) = sfu.handle_command(now, command) {
                if let Some(s) = sessions.get(&participant) {
                    let _ = s.try_send(ToSession::Refused { request, error });
                }
            }
            if request == "leave" {
                sessions.remove(&participant);
            }
        }
        ToWorker::Rooms(reply) => {
            let _ = reply.send(sfu.rooms());
        }
        ToWorker::Admin { command, reply } => {
            let _ = reply.send(sfu.handle_command(now, command));
        }
        ToWorker::Stats(reply) => {
            let _ = reply.send(WorkerStats { sfu: sfu.stats().clone(), tracks: sfu.tracks(), send_dropped, downlinks: sfu.downlinks() });
        }
    }
}

/// Deliver the core's events to the sessions. A session whose queue is full is not keeping up:
/// it is removed from the core (and its sender dropped, which its task sees).
fn dispatch(
    sfu: &mut Sfu,
    sessions: &mut FxHashMap<ParticipantId, mpsc::Sender<ToSession>>,
    sockets: &mut Sockets,
    webhooks: Option<&crate::webhook::Notifier>,
) {
    loop {
        let mut slow = Vec::new();
        while let Some(event) = sfu.poll_event() {
            match event {
                Event::Signal { to, signal } => {
                    if let Some(s) = sessions.get(&to) {
                        if s.try_send(ToSession::Signal(signal)).is_err() {
                            slow.push(to);
                        }
                    }
                }
                Event::Removed { participant, reason } => {
                    if let Some(s) = sessions.remove(&participant) {
                        let _ = s.try_send(ToSession::Removed(reason));
                    }
                }
                Event::RoomClosed { room } => {
                    if let Some(w) = webhooks {
                        w.notify(crate::webhook::Notice::RoomFinished(room));
                    }
                }
                Event::Activity(activity) => {
                    if let Some(w) = webhooks {
                        w.notify(crate::webhook::Notice::Activity(activity));
                    }
                }
            }
        }
        if slow.is_empty() {
            return;
        }
        for participant in slow {
            if sessions.remove(&participant).is_some() {
                tracing::warn!(%participant, "removed: not reading its messages");
                let leave = Command::Leave { participant, reason: LeaveReason::Disconnected };
                let _ = sfu.handle_command(Instant::now(), leave);
            }
        }
        while let Some(t) = sfu.poll_transmit() {
            sockets.send(t);
        }
        sockets.flush();
    }
}

/// The next frame of the ICE-TCP connections; never, without ICE-TCP.
async fn next_frame(inbound: &mut Option<mpsc::Receiver<Inbound>>) -> Option<Inbound> {
    match inbound {
        Some(rx) => rx.recv().await,
        None => pending().await,
    }
}

/// The next ICE-TCP connection; never, without ICE-TCP. A failed accept (out of file
/// descriptors, say) is reported after a pause, so that it does not spin the worker.
async fn accept(tcp: Option<&IceTcp>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tcp {
        Some(tcp) => match tcp.accept().await {
            Err(e) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err(e)
            }
            accepted => accepted,
        },
        None => pending().await,
    }
}

fn participant_of(command: &Command) -> &ParticipantId {
    match command {
        Command::Join { participant, .. }
        | Command::Offer { participant, .. }
        | Command::Answer { participant, .. }
        | Command::Candidate { participant, .. }
        | Command::Mute { participant, .. }
        | Command::Relay { participant, .. }
        | Command::Suspend { participant }
        | Command::Resume { participant }
        | Command::Subscription { participant, .. }
        | Command::Leave { participant, .. }
        | Command::Remove { participant }
        | Command::ForceMute { participant, .. } => participant,
    }
}
