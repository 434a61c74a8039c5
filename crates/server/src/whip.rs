//! WHIP (RFC 9725) ingest and WHEP playback: a WebRTC session made with one HTTP request, for
//! OBS, GStreamer, ffmpeg and any other stack, with nothing confab-specific (docs/protocol.md).
//!
//! `POST /whip/{room}` publishes into the room as a participant that sends only
//! ([`sfu::Role::Publisher`]); `POST /whep/{room}[/{participant}]` plays the room's earliest
//! publisher (or that participant) on the m-lines of the player's own offer
//! ([`sfu::Role::Viewer`]). Each answer names the session's resource (`Location:
//! /sessions/{id}`): `DELETE` ends it, `PATCH` trickles candidates. The session lives in the
//! media worker like a WebSocket participant; a task here drains what the worker says to it and
//! ends the session when the worker removes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfu::{Command, LeaveReason, ParticipantId, Role, Signal};
use tokio::sync::mpsc;

use crate::auth::AuthError;
use crate::http::AppState;
use crate::whip_sdp::{Trickle, ice_ufrag, trickle, usable_offer};
use crate::worker::{SESSION_QUEUE, ToSession, ToWorker};

/// Largest SDP body accepted (offers and trickle fragments): bigger gets 413.
pub(crate) const MAX_SDP_BYTES: usize = 64 * 1024;
/// How long a POST waits for the media worker's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Sent with 503 when a worker's queue is full.
const RETRY_AFTER_SECS: &str = "2";
/// Methods of the session resource.
const SESSION_METHODS: &str = "DELETE, PATCH, OPTIONS";
/// Methods of the WHIP and WHEP endpoints.
const ENDPOINT_METHODS: &str = "POST, OPTIONS";

/// The WHIP and WHEP sessions alive now, by id.
#[derive(Debug, Default)]
pub(crate) struct HttpSessions {
    map: Mutex<HashMap<String, HttpSession>>,
}

#[derive(Debug, Clone)]
struct HttpSession {
    participant: ParticipantId,
    worker: usize,
    /// The entity tag of the session's ICE state (RFC 9725 section 4.3.1).
    etag: String,
    /// The client's ICE username fragment from its offer: a PATCH with another one is an ICE
    /// restart.
    ufrag: Option<String>,
}

impl HttpSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HttpSession>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sessions open now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// `?name=` of a WHIP publisher.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NameQuery {
    name: Option<String>,
}

/// `POST /whip/{room}`.
pub(crate) async fn whip(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    Query(query): Query<NameQuery>,
    ConnectInfo(crate::http::ClientAddr(peer)): ConnectInfo<crate::http::ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = match query.name.as_deref().map(signal::validate_name) {
        None => "WHIP publisher".to_string(),
        Some(Ok(name)) => name.to_string(),
        Some(Err(e)) => return text(StatusCode::BAD_REQUEST, format!("?name=: {e}")),
    };
    start(&state, &room, name, Role::Publisher, peer, &headers, &body).await
}

/// `POST /whep/{room}`: the room's earliest publisher.
pub(crate) async fn whep(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    ConnectInfo(crate::http::ClientAddr(peer)): ConnectInfo<crate::http::ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    start(&state, &room, "WHEP player".into(), Role::Viewer(None), peer, &headers, &body).await
}

/// `POST /whep/{room}/{participant}`.
pub(crate) async fn whep_participant(
    State(state): State<Arc<AppState>>,
    Path((room, participant)): Path<(String, String)>,
    ConnectInfo(crate::http::ClientAddr(peer)): ConnectInfo<crate::http::ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let role = Role::Viewer(Some(ParticipantId::new(participant)));
    start(&state, &room, "WHEP player".into(), role, peer, &headers, &body).await
}

/// Join `room` as `role` with the offer in `body`, and answer.
async fn start(state: &Arc<AppState>, room: &str, name: String, role: Role, peer: SocketAddr, headers: &HeaderMap, body: &[u8]) -> Response {
    let whep = matches!(role, Role::Viewer(_));
    if let Err(wait) = state.join_rate.take(peer.ip(), std::time::Instant::now()) {
        let mut response = text(StatusCode::TOO_MANY_REQUESTS, format!("too many sessions started from your address: try again in {} s", wait.as_secs().max(1)));
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    if state.draining() {
        return unavailable("the server is shutting down: it takes no new sessions");
    }
    let room = match signal::validate_room(room) {
        Ok(room) => room.to_string(),
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // With API keys, `Authorization: Bearer` must hold a token that joins this room and may
    // publish (WHIP) or subscribe (WHEP).
    let (name, grants) = if state.keys.enabled() {
        let access = crate::http::bearer(headers)
            .ok_or(AuthError::Missing)
            .and_then(|t| state.keys.verify(t))
            .and_then(|c| c.join(&room))
            .and_then(|a| match (whep, a.grants) {
                (false, g) if !g.publish => Err(AuthError::Denied("WHIP publishes, and the token does not grant canPublish".into())),
                (true, g) if !g.subscribe => Err(AuthError::Denied("WHEP subscribes, and the token does not grant canSubscribe".into())),
                _ => Ok(a),
            });
        match access {
            Ok(a) => (a.name.unwrap_or(name), a.grants),
            Err(e) => return crate::http::auth_refusal(&e),
        }
    } else {
        (name, sfu::Grants::default())
    };
    if !content_type_is(headers, "application/sdp") {
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be an SDP offer, Content-Type: application/sdp");
    }
    let Ok(sdp) = std::str::from_utf8(body) else {
        return text(StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8");
    };
    if let Err(reason) = usable_offer(sdp, whep) {
        return text(StatusCode::BAD_REQUEST, reason);
    }
    // Parsed here too, so that an offer that does not parse never joins the room.
    if let Err(e) = str0m::change::SdpOffer::from_sdp_string(sdp) {
        return text(StatusCode::BAD_REQUEST, format!("the SDP offer does not parse: {}", plain(&e.to_string())));
    }
    let (worker, mode) = match state.registry.join_media(&room, !whep) {
        Ok(entered) => entered,
        Err(crate::registry::Refusal::NoRoom) => return text(StatusCode::NOT_FOUND, format!("no room {room:?}")),
        Err(refusal @ crate::registry::Refusal::PeerToPeer) => return text(StatusCode::CONFLICT, refusal.message()),
        Err(refusal) => {
            return unavailable(&refusal.message());
        }
    };
    let participant = ParticipantId::new(crate::ws::new_participant_id());
    let (tx, mut rx) = mpsc::channel(SESSION_QUEUE);
    let tx_worker = &state.workers[worker].tx;
    let join = ToWorker::Join { participant: participant.clone(), room: room.clone(), name, role, grants, mode, session: tx };
    let offer = ToWorker::Command {
        request: "offer",
        command: Command::Offer { participant: participant.clone(), sdp: sdp.to_string(), tracks: Vec::new() },
    };
    if tx_worker.try_send(join).is_err() {
        state.registry.leave(&room);
        return busy();
    }
    if tx_worker.send(offer).await.is_err() {
        state.registry.leave(&room);
        return text(StatusCode::INTERNAL_SERVER_ERROR, "the media worker stopped");
    }
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            match rx.recv().await {
                Some(ToSession::Signal(Signal::Answer { sdp })) => return Ok(sdp),
                Some(ToSession::Signal(_)) => {}
                Some(ToSession::Refused { error, .. }) => return Err(refusal(&error)),
                Some(ToSession::Removed(_)) | None => {
                    return Err(text(StatusCode::INTERNAL_SERVER_ERROR, "the media worker removed the session"));
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(busy()));
    let answer = match answer {
        Ok(answer) => answer,
        Err(response) => {
            let leave = Command::Leave { participant, reason: LeaveReason::Left };
            let _ = tx_worker.send(ToWorker::Command { request: "leave", command: leave }).await;
            state.registry.leave(&room);
            return response;
        }
    };

    let id = token(16);
    let etag = format!("\"{}\"", token(8));
    let session = HttpSession { participant: participant.clone(), worker, etag: etag.clone(), ufrag: ice_ufrag(sdp) };
    state.http_sessions.lock().insert(id.clone(), session);
    tracing::info!(%participant, %room, session = %id, kind = if whep { "whep" } else { "whip" }, "session started");
    // The session ends when the worker lets go of it: DELETE (a leave), or the worker removed it.
    let sessions = state.clone();
    let session_id = id.clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if let ToSession::Removed(reason) = msg {
                tracing::info!(session = %session_id, ?reason, "session removed");
                break;
            }
        }
        sessions.http_sessions.lock().remove(&session_id);
        sessions.registry.leave(&room);
    });

    let mut response = (StatusCode::CREATED, answer).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    insert(h, header::LOCATION, &format!("/sessions/{id}"));
    insert(h, header::ETAG, &etag);
    response
}

/// `DELETE /sessions/{id}`: end the session.
pub(crate) async fn delete(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(session) = state.http_sessions.lock().remove(&id) else {
        return text(StatusCode::NOT_FOUND, "no such session");
    };
    let leave = Command::Leave { participant: session.participant, reason: LeaveReason::Left };
    let _ = state.workers[session.worker].tx.send(ToWorker::Command { request: "leave", command: leave }).await;
    StatusCode::OK.into_response()
}

/// `PATCH /sessions/{id}`: trickled candidates (`application/trickle-ice-sdpfrag`, RFC 8840).
/// An ICE restart (a new ufrag) is refused with 422: start a new session instead.
pub(crate) async fn patch(State(state): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(session) = state.http_sessions.lock().get(&id).cloned() else {
        return text(StatusCode::NOT_FOUND, "no such session");
    };
    if !content_type_is(&headers, "application/trickle-ice-sdpfrag") {
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a PATCH carries Content-Type: application/trickle-ice-sdpfrag");
    }
    if let Some(tag) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        if tag.trim() != "*" && tag.trim() != session.etag {
            return text(StatusCode::PRECONDITION_FAILED, "If-Match does not match the session's ETag");
        }
    }
    let Ok(frag) = std::str::from_utf8(&body) else {
        return text(StatusCode::BAD_REQUEST, "the fragment is not UTF-8");
    };
    let candidates = match trickle(frag, session.ufrag.as_deref()) {
        Ok(c) => c,
        Err(Trickle::Restart) => {
            return text(StatusCode::UNPROCESSABLE_ENTITY, "ICE restarts are not supported: end this session and start a new one");
        }
        Err(Trickle::Bad(reason)) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let tx = &state.workers[session.worker].tx;
    for candidate in candidates {
        let command = Command::Candidate { participant: session.participant.clone(), candidate };
        if tx.send(ToWorker::Command { request: "candidate", command }).await.is_err() {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "the media worker stopped");
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `OPTIONS` on an endpoint: CORS preflight, and what it accepts.
pub(crate) async fn options_endpoint() -> Response {
    let mut response = preflight(ENDPOINT_METHODS);
    response.headers_mut().insert("accept-post", HeaderValue::from_static("application/sdp"));
    response
}

/// `OPTIONS` on a session: CORS preflight.
pub(crate) async fn options_session() -> Response {
    preflight(SESSION_METHODS)
}

/// 204 naming the methods of a resource (the CORS headers come from [`with_cors`]).
fn preflight(methods: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static(methods));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    response
}

/// The response to a refused command.
fn refusal(error: &sfu::Error) -> Response {
    match error {
        sfu::Error::NoPublisher => text(StatusCode::NOT_FOUND, "no such publisher in the room"),
        sfu::Error::PeerToPeerRoom => text(StatusCode::CONFLICT, error.to_string()),
        sfu::Error::InvalidSdp(e) => text(StatusCode::BAD_REQUEST, format!("the SDP offer cannot be used: {}", plain(e))),
        e => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A parser's message on one line, without the memory address str0m's SDP parser puts in it.
fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, line) in message.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        let line = match line.find(" at PointerOffset(") {
            Some(at) => &line[..at],
            None => line,
        };
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(line);
    }
    out
}

fn busy() -> Response {
    unavailable("the server is full or too busy to take a session now")
}

/// 503 with `reason` and a Retry-After.
fn unavailable(reason: &str) -> Response {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, reason);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    response
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

/// A plain-text response (with CORS headers from [`with_cors`], so browsers can read the reason).
fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (status, body).into_response()
}

/// Every response of the WHIP and WHEP routes carries the CORS headers, those axum makes too
/// (405 for a method a route does not have, 413 over the body limit, whose text it also
/// replaces with a reason).
pub(crate) async fn with_cors(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response = text(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over the limit of {} KiB", MAX_SDP_BYTES / 1024));
    }
    cors(response.headers_mut());
    response
}

fn cors(h: &mut HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, If-Match"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location, ETag, Link, Accept-Post"));
}

fn insert(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `n` random characters for session ids and entity tags.
fn token(n: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..n).map(|_| char::from(ALPHABET[fastrand::usize(..32)])).collect()
}
