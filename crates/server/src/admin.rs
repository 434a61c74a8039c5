//! The admin API (`/api/v1/rooms`, docs/api.md): list the rooms, look into one, remove a
//! participant, mute a participant's track, close a room. Reading needs a roomList token (or
//! nothing in open mode); changing needs a roomAdmin token for the room, and API keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::http::{AppState, authorize_admin, authorize_list};
use crate::worker::ToWorker;

/// The OpenAPI document of this API.
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// How long a created room stays open while empty, unless its creator says.
const DEFAULT_EMPTY_TIMEOUT_SECS: u64 = 300;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomSummary {
    name: String,
    mode: signal::RoomMode,
    participants: usize,
    viewers: usize,
    tracks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_participants: Option<usize>,
    /// Seconds a created room stays open while empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    empty_timeout: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomDetail {
    name: String,
    mode: signal::RoomMode,
    participants: Vec<signal::ParticipantInfo>,
    viewers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_participants: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    empty_timeout: Option<u64>,
}

/// The options a created room shows.
fn shown(o: &crate::registry::RoomOptions) -> (Option<usize>, Option<u64>) {
    (o.max_participants, (!o.empty_timeout.is_zero()).then(|| o.empty_timeout.as_secs()))
}

/// Every room, with the worker it lives on.
async fn rooms(state: &AppState) -> Vec<(usize, sfu::RoomInfo)> {
    let mut all = Vec::new();
    for (i, worker) in state.workers.iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        if worker.tx.send(ToWorker::Rooms(tx)).await.is_err() {
            continue;
        }
        if let Ok(rooms) = rx.await {
            all.extend(rooms.into_iter().map(|r| (i, r)));
        }
    }
    all.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    all
}

async fn room(state: &AppState, name: &str) -> Option<(usize, sfu::RoomInfo)> {
    rooms(state).await.into_iter().find(|(_, r)| r.name == name)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn no_room(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no room {name:?}"))
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /api/v1/rooms`.
pub(crate) async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize_list(&state, &headers) {
        return refused;
    }
    // The registry knows every open room (created ones waiting empty too); the workers, who is
    // in them.
    let live = rooms(&state).await;
    let rooms: Vec<RoomSummary> = state
        .registry
        .list()
        .into_iter()
        .map(|(name, _, options)| {
            let (max_participants, empty_timeout) = shown(&options);
            let info = live.iter().find(|(_, r)| r.name == name).map(|(_, r)| r);
            RoomSummary {
                mode: crate::wire::room_mode(options.mode.unwrap_or_default()),
                tracks: info.map_or(0, |r| r.participants.iter().map(|p| p.tracks.len()).sum()),
                participants: info.map_or(0, |r| r.participants.len()),
                viewers: info.map_or(0, |r| r.viewers),
                name,
                max_participants,
                empty_timeout,
            }
        })
        .collect();
    Json(serde_json::json!({ "rooms": rooms })).into_response()
}

/// `GET /api/v1/rooms/{room}`.
pub(crate) async fn get(State(state): State<Arc<AppState>>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if authorize_list(&state, &headers).is_err() {
        // A roomAdmin token of this room may look into it too.
        if let Err(refused) = authorize_admin(&state, &headers, &name) {
            return refused;
        }
    }
    let Some((_, _, options)) = state.registry.list().into_iter().find(|(n, _, _)| *n == name) else { return no_room(&name) };
    let (max_participants, empty_timeout) = shown(&options);
    let (participants, viewers) = match room(&state, &name).await {
        Some((_, r)) => (r.participants.into_iter().map(crate::wire::participant).collect(), r.viewers),
        None => (Vec::new(), 0),
    };
    let mode = crate::wire::room_mode(options.mode.unwrap_or_default());
    Json(RoomDetail { name, mode, participants, viewers, max_participants, empty_timeout }).into_response()
}

/// The body of a room creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateBody {
    name: String,
    max_participants: Option<std::num::NonZeroUsize>,
    /// Seconds it stays open while empty (default 300; 0: it closes with its last participant).
    empty_timeout: Option<u64>,
    /// `sfu`, `p2p` or `auto` (default: `--room-mode`).
    mode: Option<signal::RoomMode>,
}

/// `POST /api/v1/rooms` `{"name": "board", "maxParticipants": 10, "emptyTimeout": 600}`: open a
/// room ahead of its first join.
pub(crate) async fn create(State(state): State<Arc<AppState>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(refused) = crate::http::authorize_create(&state, &headers) {
        return refused;
    }
    let body: CreateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body is {{\"name\": ROOM, \"maxParticipants\": N, \"emptyTimeout\": SECONDS, \"mode\": \"sfu\"|\"p2p\"|\"auto\"}}: {e}")),
    };
    let name = match signal::validate_room(&body.name) {
        Ok(n) => n.to_string(),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let options = crate::registry::RoomOptions {
        max_participants: body.max_participants.map(std::num::NonZeroUsize::get),
        empty_timeout: std::time::Duration::from_secs(body.empty_timeout.unwrap_or(DEFAULT_EMPTY_TIMEOUT_SECS)),
        mode: body.mode.map(crate::wire::mode_of),
    };
    match state.registry.create(&name, options, std::time::Instant::now()) {
        Ok(mode) => {
            tracing::info!(room = %name, ?options, "room created");
            let (max_participants, empty_timeout) = shown(&options);
            let mode = crate::wire::room_mode(mode);
            let room = RoomSummary { name, mode, participants: 0, viewers: 0, tracks: 0, max_participants, empty_timeout };
            (StatusCode::CREATED, Json(room)).into_response()
        }
        Err(crate::registry::Refusal::Exists) => error(StatusCode::CONFLICT, format!("room {name:?} is open already")),
        Err(refusal) => error(StatusCode::SERVICE_UNAVAILABLE, refusal.message()),
    }
}

/// Run an admin command on the worker of `room`, for a participant that must be in it.
async fn command(state: &AppState, name: &str, participant: &str, command: sfu::Command) -> Response {
    let Some((worker, r)) = room(state, name).await else { return no_room(name) };
    if !r.participants.iter().any(|p| p.id.as_str() == participant) {
        return error(StatusCode::NOT_FOUND, format!("no participant {participant:?} in room {name:?}"));
    }
    match run(state, worker, command).await {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(sfu::Error::UnknownParticipant)) => error(StatusCode::NOT_FOUND, format!("no participant {participant:?} in room {name:?}")),
        Some(Err(sfu::Error::UnknownTrack(t))) => error(StatusCode::NOT_FOUND, format!("participant {participant:?} publishes no track {t:?}")),
        Some(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "the media worker stopped"),
    }
}

/// The core's result of `command` on `worker`; `None` if the worker is gone.
async fn run(state: &AppState, worker: usize, command: sfu::Command) -> Option<Result<(), sfu::Error>> {
    let (tx, rx) = oneshot::channel();
    state.workers[worker].tx.send(ToWorker::Admin { command, reply: tx }).await.ok()?;
    rx.await.ok()
}

/// `DELETE /api/v1/rooms/{room}/participants/{participant}`: remove it (it is told, and its
/// connection closed).
pub(crate) async fn remove(State(state): State<Arc<AppState>>, Path((name, participant)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize_admin(&state, &headers, &name) {
        return refused;
    }
    let command = sfu::Command::Remove { participant: sfu::ParticipantId::new(participant.as_str()) };
    self::command(&state, &name, &participant, command).await
}

/// The body of a mute.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MuteBody {
    track: String,
    muted: bool,
}

/// `POST /api/v1/rooms/{room}/participants/{participant}/mute` `{"track": "1", "muted": true}`.
pub(crate) async fn mute(
    State(state): State<Arc<AppState>>,
    Path((name, participant)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = authorize_admin(&state, &headers, &name) {
        return refused;
    }
    let body: MuteBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body is {{\"track\": ID, \"muted\": true|false}}: {e}")),
    };
    let command = sfu::Command::ForceMute { participant: sfu::ParticipantId::new(participant.as_str()), track: body.track, muted: body.muted };
    self::command(&state, &name, &participant, command).await
}

/// `DELETE /api/v1/rooms/{room}`: remove everyone shown in it (WHEP players wait for a publisher, as
/// they do when the last one leaves).
pub(crate) async fn close(State(state): State<Arc<AppState>>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize_admin(&state, &headers, &name) {
        return refused;
    }
    let closed = state.registry.close(&name);
    let Some((worker, r)) = room(&state, &name).await else {
        return if closed { Json(serde_json::json!({ "removed": 0 })).into_response() } else { no_room(&name) };
    };
    let mut removed = 0;
    for p in r.participants {
        let command = sfu::Command::Remove { participant: sfu::ParticipantId::new(p.id.as_str()) };
        if matches!(run(&state, worker, command).await, Some(Ok(()))) {
            removed += 1;
        }
    }
    Json(serde_json::json!({ "removed": removed })).into_response()
}
