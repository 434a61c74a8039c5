//! Webhooks: what happens in the rooms (room started and finished, participant joined and left,
//! track published and unpublished), POSTed as JSON to the configured URLs.
//!
//! Each request carries `Authorization: <JWT>`, signed (HS256) with the first API key, whose
//! `sha256` claim is the base64 SHA-256 of the body, as LiveKit signs its webhooks: a receiver
//! checks the token with the key's secret and the digest with the body. A delivery that fails
//! (no connection, or a status other than 2xx) is tried again after 1, 2, 4 and 8 s. HTTPS
//! receivers are checked against the system's root certificates. The media
//! workers hand events over without waiting: when the queue is full an event is dropped (and
//! logged), never the media path held up.

use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::auth::{self, Keys};

/// Events waiting to be sent.
const QUEUE: usize = 4096;
/// Attempts per delivery.
const ATTEMPTS: u32 = 5;
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// What happened.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    /// A room event of the core.
    Activity(sfu::Activity),
    /// The last participant left a room.
    RoomFinished(String),
}

/// The workers' handle: `notify` never waits.
#[derive(Debug, Clone)]
pub(crate) struct Notifier(mpsc::Sender<Notice>);

impl Notifier {
    pub(crate) fn notify(&self, notice: Notice) {
        if let Err(mpsc::error::TrySendError::Full(n)) = self.0.try_send(notice) {
            tracing::warn!("webhooks: the queue is full, an event is dropped: {n:?}");
        }
    }
}

/// A webhook address, `http://` or `https://` (checked against the system's root certificates,
/// or those of `SSL_CERT_FILE` / `SSL_CERT_DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Over TLS.
    tls: bool,
    /// The host name, for TLS.
    host: String,
    /// `host:port`, to connect to and for the Host header.
    authority: String,
    /// The path and query.
    path: String,
    /// The URL as given, for logs.
    url: String,
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(url: &str) -> Result<Endpoint, String> {
        let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(format!("{url:?}: expected http(s)://HOST[:PORT]/PATH")),
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let (host, authority) = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() && !authority.ends_with(']') => (host, authority.to_string()),
            _ => (authority, format!("{authority}:{}", if tls { 443 } else { 80 })),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(Endpoint { tls, host, authority, path: if path.is_empty() { "/".into() } else { path.to_string() }, url: url.to_string() })
    }
}

/// A channel for the workers, and its receiving end for [`run`].
pub(crate) fn channel() -> (Notifier, mpsc::Receiver<Notice>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Notifier(tx), rx)
}

/// Deliver every notice to every endpoint, signed with the first of `keys`.
pub(crate) async fn run(mut rx: mpsc::Receiver<Notice>, endpoints: Vec<Endpoint>, keys: Keys) {
    let Some((key, secret)) = keys.names().next().and_then(|k| Some((k.to_string(), keys.secret(k)?.to_string()))) else { return };
    while let Some(notice) = rx.recv().await {
        let body = Bytes::from(body(&notice));
        let token = match sign(&body, &key, &secret) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("webhooks: signing failed: {e}");
                continue;
            }
        };
        for endpoint in &endpoints {
            tokio::spawn(deliver(endpoint.clone(), body.clone(), token.clone()));
        }
    }
}

#[derive(Serialize)]
struct Body {
    event: &'static str,
    id: String,
    #[serde(rename = "createdAt")]
    created_at: u64,
    room: Room,
    #[serde(skip_serializing_if = "Option::is_none")]
    participant: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    track: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<signal::LeaveReason>,
}

#[derive(Serialize)]
struct Room {
    name: String,
}

/// The JSON body of a notice.
fn body(notice: &Notice) -> String {
    let id = format!("EV_{:016x}", fastrand::u64(..));
    let created_at = auth::unix_now();
    let b = |event, room: &str| Body { event, id: id.clone(), created_at, room: Room { name: room.to_string() }, participant: None, track: None, reason: None };
    let body = match notice {
        Notice::RoomFinished(room) => b("room_finished", room),
        Notice::Activity(a) => match a {
            sfu::Activity::RoomStarted { room } => b("room_started", room),
            sfu::Activity::ParticipantJoined { room, participant } => {
                Body { participant: serde_json::to_value(crate::wire::participant(participant.clone())).ok(), ..b("participant_joined", room) }
            }
            sfu::Activity::ParticipantLeft { room, participant, reason } => Body {
                participant: Some(serde_json::json!({ "id": participant.to_string() })),
                reason: Some(crate::wire::leave_reason(*reason)),
                ..b("participant_left", room)
            },
            sfu::Activity::TrackPublished { room, participant, track } => Body {
                participant: Some(serde_json::json!({ "id": participant.to_string() })),
                track: serde_json::to_value(crate::wire::track(track.clone())).ok(),
                ..b("track_published", room)
            },
            sfu::Activity::TrackUnpublished { room, participant, track } => Body {
                participant: Some(serde_json::json!({ "id": participant.to_string() })),
                track: Some(serde_json::json!({ "id": track })),
                ..b("track_unpublished", room)
            },
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// The `Authorization` token of `body`.
pub(crate) fn sign(body: &[u8], key: &str, secret: &str) -> Result<String, String> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    let now = auth::unix_now();
    let claims = serde_json::json!({
        "iss": key,
        "nbf": now.saturating_sub(auth::LEEWAY_SECS),
        "exp": now + 300,
        "sha256": base64::engine::general_purpose::STANDARD.encode(digest.as_ref()),
    });
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()))
        .map_err(|e| e.to_string())
}

async fn deliver(endpoint: Endpoint, body: Bytes, token: String) {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
        }
        match tokio::time::timeout(ATTEMPT_TIMEOUT, post(&endpoint, body.clone(), &token)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return,
            Ok(Ok(status)) => tracing::warn!(url = %endpoint.url, attempt = attempt + 1, "webhook answered {status}"),
            Ok(Err(e)) => tracing::warn!(url = %endpoint.url, attempt = attempt + 1, "webhook failed: {e}"),
            Err(_) => tracing::warn!(url = %endpoint.url, attempt = attempt + 1, "webhook timed out"),
        }
    }
    tracing::warn!(url = %endpoint.url, "webhook given up after {ATTEMPTS} attempts");
}

/// The TLS client of HTTPS webhooks: the system's root certificates (or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`), loaded once.
fn tls_connector() -> &'static Result<tokio_rustls::TlsConnector, String> {
    static CONNECTOR: std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>> = std::sync::OnceLock::new();
    CONNECTOR.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(format!("no root certificates found to check HTTPS webhooks with ({:?})", found.errors));
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)))
    })
}

async fn post(endpoint: &Endpoint, body: Bytes, token: &str) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect(&endpoint.authority).await.map_err(|e| e.to_string())?;
    if endpoint.tls {
        let connector = tls_connector().as_ref().map_err(Clone::clone)?;
        let name = rustls_pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| format!("{}: {e}", endpoint.host))?;
        let tls = connector.connect(name, stream).await.map_err(|e| format!("TLS: {e}"))?;
        send(endpoint, TokioIo::new(tls), body, token).await
    } else {
        send(endpoint, TokioIo::new(stream), body, token).await
    }
}

async fn send<T>(endpoint: &Endpoint, io: T, body: Bytes, token: &str) -> Result<u16, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::post(endpoint.path.as_str())
        .header(hyper::header::HOST, endpoint.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/webhook+json")
        .header(hyper::header::AUTHORIZATION, token)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_plain_http_urls() {
        let e: Endpoint = "http://hooks.local:8080/confab?x=1".parse().unwrap();
        assert_eq!((e.authority.as_str(), e.path.as_str()), ("hooks.local:8080", "/confab?x=1"));
        let e: Endpoint = "http://hooks.local".parse().unwrap();
        assert_eq!((e.authority.as_str(), e.path.as_str()), ("hooks.local:80", "/"));
        let e: Endpoint = "https://hooks.example.com/in".parse().unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.authority.as_str()), (true, "hooks.example.com", "hooks.example.com:443"));
        assert!("ftp://x/".parse::<Endpoint>().is_err());
        assert!("http:///x".parse::<Endpoint>().is_err());
    }

    #[test]
    fn bodies_name_the_event_and_the_room() {
        let b: serde_json::Value = serde_json::from_str(&body(&Notice::RoomFinished("r".into()))).unwrap();
        assert_eq!((b["event"].as_str(), b["room"]["name"].as_str()), (Some("room_finished"), Some("r")));
        let left = Notice::Activity(sfu::Activity::ParticipantLeft { room: "r".into(), participant: sfu::ParticipantId::new("P1"), reason: sfu::LeaveReason::Left });
        let b: serde_json::Value = serde_json::from_str(&body(&left)).unwrap();
        assert_eq!(b["participant"]["id"], "P1");
        assert_eq!(b["reason"], "left");
    }
}
