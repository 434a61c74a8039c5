//! The HTTP side: the embedded web client, the WebSocket endpoint, health.

use std::sync::Arc;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::registry::Registry;
use crate::worker::Worker;
use crate::{assets, ws};

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) workers: Vec<Worker>,
    pub(crate) registry: Registry,
    /// Flips to `true` when the server shuts down.
    pub(crate) shutdown: watch::Sender<bool>,
    /// When the server started.
    pub(crate) started: std::time::Instant,
    /// The WHIP and WHEP sessions.
    pub(crate) http_sessions: crate::whip::HttpSessions,
    /// The built-in STUN/TURN server, if it runs: joining clients get credentials for it.
    pub(crate) turn: Option<crate::turn_server::TurnHandle>,
    /// API keys; none: open mode.
    pub(crate) keys: crate::auth::Keys,
    /// Flips to `true` when the server starts draining (SIGTERM, or a first Ctrl-C): joins are
    /// refused and the sessions are told.
    pub(crate) drain: watch::Sender<bool>,
    /// How long a drain waits for the participants to leave.
    pub(crate) drain_timeout: std::time::Duration,
    /// Joins per client address.
    pub(crate) join_rate: crate::ratelimit::JoinRate,
    /// How long a participant whose WebSocket was lost keeps its place.
    pub(crate) reconnect_grace: std::time::Duration,
    /// The places of the WebSocket sessions, for reconnecting clients.
    pub(crate) places: crate::places::Places,
}

impl AppState {
    /// Whether the server is draining.
    pub(crate) fn draining(&self) -> bool {
        *self.drain.borrow()
    }
}

/// The token of an `Authorization: Bearer` header, if there is one.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The HTTP answer to a refused token: 401 with a `WWW-Authenticate` challenge when the token is
/// missing or bad, 403 when it is good but short of a grant.
pub(crate) fn auth_refusal(e: &crate::auth::AuthError) -> Response {
    if e.is_unauthenticated() {
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], format!("{e}\n")).into_response()
    } else {
        (StatusCode::FORBIDDEN, format!("{e}\n")).into_response()
    }
}

/// With API keys configured, the request's bearer token must be valid and pass `grant`. Without
/// keys, `open` decides: reading is open, while changing rooms is refused (there is nobody to
/// trust with it).
fn authorize(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    open: Result<(), &str>,
    grant: impl FnOnce(&crate::auth::Claims) -> Result<(), crate::auth::AuthError>,
) -> Result<(), Response> {
    use crate::auth::AuthError;
    if !state.keys.enabled() {
        return open.map_err(|why| auth_refusal(&AuthError::Denied(why.into())));
    }
    let claims = bearer(headers).ok_or(AuthError::Missing).and_then(|t| state.keys.verify(t));
    claims.and_then(|c| grant(&c)).map_err(|e| auth_refusal(&e))
}

/// The roomCreate grant; refused without API keys.
pub(crate) fn authorize_create(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), Response> {
    let open = Err("creating rooms through the admin API needs API keys: configure CONFAB_KEYS and use a roomCreate token");
    authorize(state, headers, open, |c| c.create())
}

/// The roomAdmin grant for `room`; refused without API keys.
pub(crate) fn authorize_admin(state: &AppState, headers: &axum::http::HeaderMap, room: &str) -> Result<(), Response> {
    let open = Err("changing rooms through the admin API needs API keys: configure CONFAB_KEYS and use a roomAdmin token");
    authorize(state, headers, open, |c| c.admin(room))
}

/// The roomList grant (see [`crate::auth::Claims::list`]); open without API keys.
pub(crate) fn authorize_list(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), Response> {
    authorize(state, headers, Ok(()), |c| c.list())
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::handler))
        .route("/api/v1/stats", get(crate::stats::handler))
        .route("/api/v1/openapi.json", get(crate::admin::openapi))
        .route("/api/v1/rooms", get(crate::admin::list).post(crate::admin::create))
        .route("/api/v1/rooms/{room}", get(crate::admin::get).delete(crate::admin::close))
        .route("/api/v1/rooms/{room}/participants/{participant}", axum::routing::delete(crate::admin::remove))
        .route("/api/v1/rooms/{room}/participants/{participant}/mute", axum::routing::post(crate::admin::mute))
        .merge(whip_routes())
        .route("/", get(|| async { asset("/index.html") }))
        .route("/{file}", get(|axum::extract::Path(file): axum::extract::Path<String>| async move {
            asset(&format!("/{file}"))
        }))
        .with_state(state)
}

/// WHIP and WHEP (see whip.rs), with a body limit of their own.
fn whip_routes() -> Router<Arc<AppState>> {
    use crate::whip;
    use axum::routing::{delete, post};
    Router::new()
        .route("/whip/{room}", post(whip::whip).options(whip::options_endpoint))
        .route("/whep/{room}", post(whip::whep).options(whip::options_endpoint))
        .route("/whep/{room}/{participant}", post(whip::whep_participant).options(whip::options_endpoint))
        .route("/sessions/{id}", delete(whip::delete).patch(whip::patch).options(whip::options_session))
        .layer(axum::extract::DefaultBodyLimit::max(whip::MAX_SDP_BYTES))
        .layer(axum::middleware::map_response(whip::with_cors))
}

/// Ready for new participants: 200, or 503 while draining (a load balancer stops sending new
/// people here).
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn websocket(
    upgrade: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    axum::extract::ConnectInfo(ClientAddr(peer)): axum::extract::ConnectInfo<ClientAddr>,
) -> Response {
    upgrade
        .max_message_size(signal::MAX_FRAME_BYTES)
        .max_frame_size(signal::MAX_FRAME_BYTES)
        .on_upgrade(move |socket| ws::session(socket, state, peer.ip()))
}

fn asset(path: &str) -> Response {
    match assets::get(path) {
        Some((content_type, body)) => (
            [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// The client's address, for `ConnectInfo` over plain TCP and over TLS alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}
