//! One WebSocket signaling session (docs/protocol.md): parse the client's messages, pass them to
//! the media worker of its room, and put the worker's messages on the wire.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use signal::{ClientMessage, ErrorCode, ServerMessage, PROTOCOL_VERSION};
use sfu::{Command, LeaveReason, ParticipantId};
use tokio::sync::mpsc;
use tokio::time::{Instant, interval_at};

use crate::auth::AuthError;
use crate::http::AppState;
use crate::wire;
use crate::worker::{SESSION_QUEUE, ToSession, ToWorker};

/// Close codes (see docs/protocol.md).
pub(crate) const CLOSE_NORMAL: u16 = 1000;
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
pub(crate) const CLOSE_INTERNAL: u16 = 1011;
pub(crate) const CLOSE_IDLE: u16 = 4001;
pub(crate) const CLOSE_REMOVED: u16 = 4002;
/// The client reconnected on another socket, which took this one's place.
pub(crate) const CLOSE_REPLACED: u16 = 4003;

/// The server pings this often...
const PING_EVERY: Duration = Duration::from_secs(15);
/// ...and closes a socket it has heard nothing from for this long.
const IDLE_LIMIT: Duration = Duration::from_secs(45);

struct Joined {
    participant: ParticipantId,
    room: String,
    worker: usize,
    events: mpsc::Receiver<ToSession>,
    /// What the participant may do, as told in `joined`.
    grants: signal::Grants,
    /// The secret that takes this place back (places.rs), told in `joined`.
    token: String,
    /// Sockets that take this place back.
    handoff: mpsc::Receiver<WebSocket>,
    /// The next `joined` answers a reconnect.
    resumed: bool,
}

/// How a session's socket ended.
enum End {
    /// Close with this code and reason; the participant leaves for `LeaveReason`.
    Close(u16, &'static str, LeaveReason),
    /// The client closed the socket: it leaves.
    Gone,
    /// The socket broke (no close frame) or went quiet: the place is kept for a while.
    Lost,
    /// The socket asks to take back a place it had (`join` with `reconnect`).
    Reconnect(signal::Reconnect),
}

/// What arrives for a joined session besides its socket's frames.
enum Incoming {
    /// From its media worker.
    Event(Option<ToSession>),
    /// A new socket that takes the place over.
    Socket(Option<WebSocket>),
}

pub(crate) async fn session(mut socket: WebSocket, state: Arc<AppState>, ip: std::net::IpAddr) {
    let mut joined: Option<Joined> = None;
    let end = loop {
        match serve(&mut socket, &state, &mut joined, ip).await {
            End::Reconnect(r) if joined.is_none() => match state.places.hand_over(&r.participant, &r.token, socket) {
                // This socket goes on in the session holding the place; this one ends here.
                Ok(()) => return,
                Err(back) => {
                    socket = back;
                    let msg = ServerMessage::error(ErrorCode::ReconnectFailed, "the server keeps no such place (it expired, or the token is wrong): join again", Some("join"));
                    if send(&mut socket, &msg).await.is_err() {
                        break End::Gone;
                    }
                }
            },
            End::Reconnect(_) => {
                let msg = ServerMessage::error(ErrorCode::AlreadyJoined, "this socket has already joined a room", Some("join"));
                if send(&mut socket, &msg).await.is_err() {
                    break End::Lost;
                }
            }
            End::Lost if !state.reconnect_grace.is_zero() => {
                let Some(j) = joined.as_mut() else { break End::Gone };
                match keep_place(&state, j).await {
                    Some(new) => {
                        socket = new;
                        resume(&state, j).await;
                    }
                    None => break End::Lost,
                }
            }
            other => break other,
        }
    };
    let reason = match end {
        End::Close(code, text, reason) => {
            let frame = CloseFrame { code, reason: text.into() };
            let _ = socket.send(Message::Close(Some(frame))).await;
            if code == CLOSE_TOO_BIG {
                // The rest of the oversized frame is still unread, and closing a TCP socket with
                // unread data resets it: the client would see 1006 instead of our close code.
                // Hold the connection a moment so the client reads the close frame first.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            reason
        }
        End::Gone | End::Lost | End::Reconnect(_) => LeaveReason::Disconnected,
    };
    if let Some(j) = joined {
        state.places.close(j.participant.as_str());
        let leave = Command::Leave { participant: j.participant, reason };
        let _ = state.workers[j.worker].tx.send(ToWorker::Command { request: "leave", command: leave }).await;
        state.registry.leave(&j.room);
    }
}

/// Serve one socket until it ends.
async fn serve(socket: &mut WebSocket, state: &AppState, joined: &mut Option<Joined>, ip: std::net::IpAddr) -> End {
    let mut last_heard = Instant::now();
    let mut ping = interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut shutdown = state.shutdown.subscribe();
    let mut drain = state.drain.subscribe();
    if *drain.borrow_and_update() && joined.is_some() {
        // A socket that took a place back during a drain is told too.
        let msg = ServerMessage::Draining { seconds: state.drain_timeout.as_secs() };
        if send(socket, &msg).await.is_err() {
            return End::Lost;
        }
    }
    loop {
        let incoming = async {
            match joined.as_mut() {
                Some(j) => tokio::select! {
                    event = j.events.recv() => Incoming::Event(event),
                    new = j.handoff.recv() => Incoming::Socket(new),
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = socket.recv() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(end) = on_text(socket, state, joined, text.as_str(), ip).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let msg = ServerMessage::error(ErrorCode::BadMessage, "binary frames are not part of the protocol", None);
                        if send(socket, &msg).await.is_err() {
                            return End::Lost;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) => return End::Gone,
                    None => return End::Lost,
                    Some(Err(e)) => {
                        // tungstenite reports an over-long frame as a capacity error.
                        if e.to_string().contains("too long") {
                            return End::Close(CLOSE_TOO_BIG, "message too big", LeaveReason::Disconnected);
                        }
                        return End::Lost;
                    }
                }
            }
            incoming = incoming => match incoming {
                Incoming::Event(Some(ToSession::Signal(signal))) => {
                    let mut message = wire::server_message(signal);
                    if let ServerMessage::Joined { ice_servers, participant, grants, reconnect_token, reconnected, .. } = &mut message {
                        if let Some(turn) = &state.turn {
                            ice_servers.push(turn_ice_server(turn, &participant.id));
                        }
                        if let Some(j) = joined.as_mut() {
                            *grants = j.grants;
                            if !state.reconnect_grace.is_zero() {
                                *reconnect_token = Some(j.token.clone());
                            }
                            *reconnected = std::mem::take(&mut j.resumed);
                        }
                    }
                    if send(socket, &message).await.is_err() {
                        return End::Lost;
                    }
                }
                Incoming::Event(Some(ToSession::Refused { request, error })) => {
                    if send(socket, &wire::refusal(request, &error)).await.is_err() {
                        return End::Lost;
                    }
                }
                Incoming::Event(Some(ToSession::Removed(reason))) => {
                    let (msg, code) = wire::removal(reason);
                    let _ = send(socket, &msg).await;
                    return End::Close(code, "removed", reason);
                }
                Incoming::Event(None) => {
                    // The worker dropped us: we were not reading fast enough.
                    let (msg, code) = wire::removal(LeaveReason::Disconnected);
                    let _ = send(socket, &msg).await;
                    return End::Close(code, "too slow", LeaveReason::Disconnected);
                }
                Incoming::Socket(Some(new)) => {
                    // The client reconnected while this socket still looked alive (a network
                    // change can leave it hanging): the new one replaces it.
                    let mut old = std::mem::replace(socket, new);
                    tokio::spawn(async move {
                        let frame = CloseFrame { code: CLOSE_REPLACED, reason: "replaced by a new connection".into() };
                        let _ = old.send(Message::Close(Some(frame))).await;
                    });
                    last_heard = Instant::now();
                    if let Some(j) = joined.as_mut() {
                        resume(state, j).await;
                    }
                }
                Incoming::Socket(None) => return End::Lost,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT {
                    // Quiet that long, the client is most likely gone: its place is kept.
                    let frame = CloseFrame { code: CLOSE_IDLE, reason: "keepalive timeout".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return End::Lost;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return End::Lost;
                }
            }
            _ = shutdown.changed() => {
                return End::Close(CLOSE_GOING_AWAY, "server shutting down", LeaveReason::Disconnected);
            }
            Ok(()) = drain.changed() => {
                if *drain.borrow_and_update() {
                    let msg = ServerMessage::Draining { seconds: state.drain_timeout.as_secs() };
                    if send(socket, &msg).await.is_err() {
                        return End::Lost;
                    }
                }
            }
        }
    }
}

/// The socket of `j` was lost: keep its place until a new socket takes it back (returned),
/// `--reconnect-grace` passes, the server stops, or the participant is removed (`None`).
async fn keep_place(state: &AppState, j: &mut Joined) -> Option<WebSocket> {
    let suspend = Command::Suspend { participant: j.participant.clone() };
    if state.workers[j.worker].tx.send(ToWorker::Command { request: "join", command: suspend }).await.is_err() {
        return None;
    }
    let deadline = Instant::now() + state.reconnect_grace;
    let mut shutdown = state.shutdown.subscribe();
    loop {
        tokio::select! {
            new = j.handoff.recv() => return new,
            event = j.events.recv() => match event {
                // Its place is gone (its media failed, an administrator removed it...).
                Some(ToSession::Removed(_)) | None => return None,
                // What is said meanwhile is lost: a reconnect gets a fresh `joined`.
                Some(_) => {}
            },
            _ = tokio::time::sleep_until(deadline) => return None,
            _ = shutdown.changed() => return None,
        }
    }
}

/// A new socket took the place of `j` back: the worker sends it a fresh `joined`.
async fn resume(state: &AppState, j: &mut Joined) {
    tracing::debug!(participant = %j.participant, "reconnected");
    j.resumed = true;
    let resume = Command::Resume { participant: j.participant.clone() };
    let _ = state.workers[j.worker].tx.send(ToWorker::Command { request: "join", command: resume }).await;
}

/// Handle one text frame; `Some` ends the session.
async fn on_text(socket: &mut WebSocket, state: &AppState, joined: &mut Option<Joined>, text: &str, ip: std::net::IpAddr) -> Option<End> {
    let msg = match signal::parse_client_message(text) {
        Ok(msg) => msg,
        Err(e) => {
            let reply = ServerMessage::error(e.code(), e.to_string(), None);
            return send(socket, &reply).await.err();
        }
    };
    let request = msg.type_name();
    let reply_error = |code: ErrorCode, message: String| ServerMessage::error(code, message, Some(request));
    let (participant, worker) = match (&msg, joined.as_ref()) {
        (ClientMessage::Ping(ping), _) => {
            return send(socket, &ServerMessage::Pong { id: ping.id }).await.err();
        }
        (ClientMessage::Join(join), None) => {
            if let Some(r) = &join.reconnect {
                return Some(End::Reconnect(r.clone()));
            }
            if let Err(wait) = state.join_rate.take(ip, std::time::Instant::now()) {
                let message = format!("too many joins from your address: try again in {} s", wait.as_secs().max(1));
                return send(socket, &reply_error(ErrorCode::RateLimited, message)).await.err();
            }
            return match join_room(state, join) {
                Ok(j) => {
                    *joined = Some(j);
                    None
                }
                Err(reply) => {
                    let full = matches!(*reply, ServerMessage::Error { code: ErrorCode::ServerFull, .. });
                    match send(socket, &reply).await {
                        Err(end) => Some(end),
                        Ok(()) if full => Some(End::Close(CLOSE_REMOVED, "server full", LeaveReason::Disconnected)),
                        Ok(()) => None,
                    }
                }
            };
        }
        (ClientMessage::Join(_), Some(_)) => {
            let reply = reply_error(ErrorCode::AlreadyJoined, "this socket has already joined a room".into());
            return send(socket, &reply).await.err();
        }
        (_, None) => {
            let reply = reply_error(ErrorCode::NotJoined, "send join first".into());
            return send(socket, &reply).await.err();
        }
        (_, Some(j)) => (j.participant.clone(), j.worker),
    };
    let command = match msg {
        ClientMessage::Offer(o) => Command::Offer { participant, sdp: o.sdp, tracks: wire::track_meta(o.tracks) },
        ClientMessage::Answer(a) => Command::Answer { participant, id: a.id, sdp: a.sdp },
        ClientMessage::Candidate(c) => match c.candidate {
            Some(c) if !c.candidate.trim().is_empty() => Command::Candidate { participant, candidate: c.candidate },
            // End of candidates: nothing to do for an ICE-lite server.
            _ => return None,
        },
        ClientMessage::Mute(m) => Command::Mute { participant, track: m.track, muted: m.muted },
        ClientMessage::Signal(m) => {
            let payload = serde_json::to_string(&m.data).unwrap_or_default();
            if payload.len() > signal::MAX_SIGNAL_DATA {
                let message = format!("signal data is {} bytes; the most is {}", payload.len(), signal::MAX_SIGNAL_DATA);
                return send(socket, &reply_error(ErrorCode::BadMessage, message)).await.err();
            }
            Command::Relay { participant, to: ParticipantId::new(m.to), payload }
        }
        ClientMessage::Subscription(m) => Command::Subscription {
            participant,
            publisher: ParticipantId::new(m.participant.as_str()),
            track: m.track,
            width: m.width,
            height: m.height,
        },
        ClientMessage::Leave => {
            if let Some(j) = joined.take() {
                let leave = Command::Leave { participant: j.participant, reason: LeaveReason::Left };
                let _ = state.workers[worker].tx.send(ToWorker::Command { request, command: leave }).await;
                state.registry.leave(&j.room);
            }
            return Some(End::Close(CLOSE_NORMAL, "left", LeaveReason::Left));
        }
        _ => return None,
    };
    if state.workers[worker].tx.send(ToWorker::Command { request, command }).await.is_err() {
        let _ = send(socket, &reply_error(ErrorCode::Internal, "the media worker stopped".into())).await;
        return Some(End::Close(CLOSE_INTERNAL, "media worker stopped", LeaveReason::Internal));
    }
    None
}

fn join_room(state: &AppState, join: &signal::Join) -> Result<Joined, Box<ServerMessage>> {
    let refuse = |e: signal::Error| Box::new(ServerMessage::error(e.code(), e.to_string(), Some("join")));
    if let Some(v) = join.protocol.filter(|v| *v != PROTOCOL_VERSION) {
        return Err(refuse(signal::Error::UnsupportedVersion(v)));
    }
    if state.draining() {
        return Err(Box::new(ServerMessage::error(ErrorCode::ShuttingDown, "the server is shutting down: it takes no new participants", Some("join"))));
    }
    let room = signal::validate_room(&join.room).map_err(refuse)?.to_string();
    let access = if state.keys.enabled() {
        let checked = join.token.as_deref().ok_or(AuthError::Missing).and_then(|t| state.keys.verify(t)).and_then(|c| c.join(&room));
        match checked {
            Ok(access) => Some(access),
            Err(e) => {
                let code = if e.is_unauthenticated() { ErrorCode::Unauthorized } else { ErrorCode::Forbidden };
                return Err(Box::new(ServerMessage::error(code, e.to_string(), Some("join"))));
            }
        }
    } else {
        None
    };
    // The token's name, if it sets one, is the name shown.
    let name = access.as_ref().and_then(|a| a.name.as_deref()).unwrap_or(&join.name);
    let name = signal::validate_name(name).map_err(refuse)?.to_string();
    let (grants, wire_grants) = match &access {
        Some(a) => (a.grants, signal::Grants { can_publish: a.grants.publish, can_subscribe: a.grants.subscribe, can_publish_data: a.grants.publish_data }),
        None => (sfu::Grants::default(), signal::Grants::default()),
    };
    let participant = ParticipantId::new(new_participant_id());
    let (worker, mode) = match state.registry.join(&room, join.mode.map(crate::wire::mode_of)) {
        Ok(entered) => entered,
        Err(refusal) => {
            let code = match refusal {
                crate::registry::Refusal::RoomFull | crate::registry::Refusal::MeshFull(_) => ErrorCode::RoomFull,
                _ => ErrorCode::ServerFull,
            };
            return Err(Box::new(ServerMessage::error(code, refusal.message(), Some("join"))));
        }
    };
    let (tx, rx) = mpsc::channel(SESSION_QUEUE);
    let msg = ToWorker::Join { participant: participant.clone(), room: room.clone(), name, role: sfu::Role::Member, grants, mode, session: tx };
    if state.workers[worker].tx.try_send(msg).is_err() {
        state.registry.leave(&room);
        return Err(Box::new(ServerMessage::error(ErrorCode::ServerFull, "the server is too busy to take you now", Some("join"))));
    }
    let identity = access.as_ref().map(|a| a.identity.as_str());
    tracing::debug!(%participant, %room, worker, ?identity, "joined");
    let (token, handoff) = state.places.open(participant.as_str());
    Ok(Joined { participant, room, worker, events: rx, grants: wire_grants, token, handoff, resumed: false })
}

/// How long the TURN credentials a joining client gets stay good: a long call outlasts a day
/// rarely, and an ICE restart later in it reuses them.
const TURN_CREDENTIAL_TTL: Duration = Duration::from_secs(24 * 3600);

/// The built-in TURN server as an `RTCIceServer` for `participant`: STUN and TURN over UDP, with
/// fresh ephemeral credentials.
fn turn_ice_server(turn: &crate::turn_server::TurnHandle, participant: &str) -> signal::IceServer {
    let (username, credential) = turn.credentials(participant, TURN_CREDENTIAL_TTL);
    let host = match turn.advertised.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let port = turn.advertised.port();
    let mut urls = vec![format!("stun:{host}:{port}"), format!("turn:{host}:{port}?transport=udp"), format!("turn:{host}:{port}?transport=tcp")];
    if let Some(tls) = turn.tls {
        urls.push(format!("turns:{host}:{}?transport=tcp", tls.port()));
    }
    signal::IceServer {
        urls,
        username: Some(username),
        credential: Some(credential),
    }
}

/// A participant id: "P" and 11 random base-32 characters.
pub(crate) fn new_participant_id() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut id = String::with_capacity(12);
    id.push('P');
    for _ in 0..11 {
        id.push(char::from(ALPHABET[fastrand::usize(..32)]));
    }
    id
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> Result<(), End> {
    socket.send(Message::Text(msg.to_json().into())).await.map_err(|_| End::Lost)
}
