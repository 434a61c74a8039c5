//! A media worker: one thread, one UDP socket, one SFU core. It is the thin driver of the
//! sans-IO core (see the driving contract on `sfu::Sfu`): datagrams, signaling commands and
//! timeouts in; datagrams and per-participant messages out.

use std::future::pending;
use std::net::SocketAddr;
use std::time::Instant;

use rustc_hash::FxHashMap;
use sfu::{Command, Event, LeaveReason, ParticipantId, Sfu, SfuConfig, Signal};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
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
}

/// Bind the worker's socket and start its thread.
pub(crate) fn spawn(
    index: usize,
    bind: SocketAddr,
    public_ips: &[std::net::IpAddr],
    congestion_control: bool,
    webhooks: Option<crate::webhook::Notifier>,
) -> Result<Worker, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let socket = runtime.block_on(async { MediaSocket::bind(bind, public_ips) })?;
    let addr = socket.local_addr()?;
    let candidates = socket.advertised.candidates();
    let sfu = Sfu::new(SfuConfig { congestion_control, ..SfuConfig::new(candidates.clone()) })?;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    std::thread::Builder::new()
        .name(format!("media-{index}"))
        .spawn(move || runtime.block_on(run(socket, sfu, rx, webhooks)))?;
    Ok(Worker { tx, addr, candidates })
}

async fn run(mut socket: MediaSocket, mut sfu: Sfu, mut rx: mpsc::Receiver<ToWorker>, webhooks: Option<crate::webhook::Notifier>) {
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
                Some(msg) => command(&mut sfu, &mut sessions, msg, socket.stats.send_dropped),
                // Every sender is gone: the server is shutting down.
                None => return,
            },
            ready = socket.readable() => {
                if let Err(e) = ready {
                    tracing::error!("media socket failed: {e}");
                    return;
                }
                let now = Instant::now();
                if let Err(e) = socket.recv(|src, dst, data| sfu.handle_datagram(now, src, dst, data)) {
                    tracing::debug!("media socket receive: {e}");
                }
                // A socket that is always readable must not starve the timers (pacing,
                // retransmissions, RTCP, keepalives): they run after every batch when due.
                if sfu.poll_timeout().is_some_and(|t| t <= now) {
                    sfu.handle_timeout(now);
                }
            }
            () = timeout => sfu.handle_timeout(Instant::now()),
        }
        while let Some(t) = sfu.poll_transmit() {
            socket.send(&t);
        }
        dispatch(&mut sfu, &mut sessions, &mut socket, webhooks.as_ref());
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
        ToWorker::Join { participant, room, name, role, grants, session } => {
            sessions.insert(participant.clone(), session);
            let join = Command::Join { participant: participant.clone(), room, name, role, grants };
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
    socket: &mut MediaSocket,
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
            socket.send(&t);
        }
    }
}

fn participant_of(command: &Command) -> &ParticipantId {
    match command {
        Command::Join { participant, .. }
        | Command::Offer { participant, .. }
        | Command::Answer { participant, .. }
        | Command::Candidate { participant, .. }
        | Command::Mute { participant, .. }
        | Command::Subscription { participant, .. }
        | Command::Leave { participant, .. }
        | Command::Remove { participant }
        | Command::ForceMute { participant, .. } => participant,
    }
}
