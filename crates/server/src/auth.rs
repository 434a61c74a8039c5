//! Access tokens: JWTs signed with HS256 by an API secret, with claims shaped like LiveKit's, so
//! token servers written for LiveKit work unchanged (docs/protocol.md, "Access tokens").
//!
//! `iss` names the API key whose secret signed the token, `sub` is the identity, `video` holds
//! the grants. A token is checked whole before anything it says is used: the header must say
//! HS256 (never `none`, never another algorithm), the key must be known, the signature must
//! verify with its secret, `exp` must be in the future and `nbf` (if any) in the past, both with
//! [`LEEWAY_SECS`] of slack for clocks that differ.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Seconds of clock difference allowed on `exp` and `nbf`.
pub(crate) const LEEWAY_SECS: u64 = 10;
/// A secret shorter than this is refused at start: HS256 is as strong as its secret.
pub(crate) const MIN_SECRET_LEN: usize = 32;
/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused, or a grant did not cover what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AuthError {
    /// No token where one is needed.
    #[error("an access token is needed: this server has API keys configured")]
    Missing,
    /// Not a JWT: not three base64url parts, or not JSON inside.
    #[error("the access token is malformed: {0}")]
    Malformed(String),
    /// The header names another algorithm than HS256 (`none` included).
    #[error("the access token is signed with {0:?}; only HS256 is accepted")]
    Algorithm(String),
    /// `iss` names an API key this server does not have.
    #[error("the access token's API key {0:?} is unknown here")]
    UnknownKey(String),
    /// The signature does not verify with the key's secret.
    #[error("the access token's signature is invalid")]
    Signature,
    /// `exp` has passed.
    #[error("the access token has expired")]
    Expired,
    /// `nbf` is still ahead.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// The token is valid but its grants do not cover the action.
    #[error("the access token does not allow this: {0}")]
    Denied(String),
}

impl AuthError {
    /// Whether the token itself is bad (HTTP 401), rather than short of a grant (403).
    pub(crate) fn is_unauthenticated(&self) -> bool {
        !matches!(self, AuthError::Denied(_))
    }
}

/// The `video` grant object (LiveKit's `VideoGrant`); fields a token leaves out are absent.
/// Unknown fields are ignored, so LiveKit tokens with grants confab does not use still work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VideoGrant {
    /// The room this token is for; required for joining, optional for admin grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<String>,
    /// May join `room`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) room_join: bool,
    /// May publish audio and video (default: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) can_publish: Option<bool>,
    /// May receive the others' media (default: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) can_subscribe: Option<bool>,
    /// May send data-channel messages (default: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) can_publish_data: Option<bool>,
    /// May administer `room` (or every room if `room` is absent) through the admin API.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) room_admin: bool,
    /// May create rooms through the admin API.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) room_create: bool,
    /// May list rooms and read the server's statistics.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) room_list: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A token's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The API key that signed it.
    pub(crate) iss: String,
    /// The participant's identity.
    #[serde(default)]
    pub(crate) sub: String,
    /// The display name, if the token sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// Not valid before (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<u64>,
    /// Expiry (Unix seconds).
    pub(crate) exp: u64,
    /// The grants.
    #[serde(default)]
    pub(crate) video: VideoGrant,
}

/// What a verified token lets its holder do in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomAccess {
    /// The identity (`sub`).
    pub(crate) identity: String,
    /// The display name the token sets, if any.
    pub(crate) name: Option<String>,
    /// Publish, subscribe, send data messages.
    pub(crate) grants: sfu::Grants,
}

impl Claims {
    /// The access this token gives to `room`, if it grants joining it.
    pub(crate) fn join(&self, room: &str) -> Result<RoomAccess, AuthError> {
        let v = &self.video;
        if !v.room_join {
            return Err(AuthError::Denied("joining a room needs the roomJoin grant".into()));
        }
        match v.room.as_deref() {
            Some(r) if r == room => {}
            Some(r) => return Err(AuthError::Denied(format!("the token is for room {r:?}, not {room:?}"))),
            None => return Err(AuthError::Denied("a roomJoin token must name its room".into())),
        }
        if self.sub.is_empty() {
            return Err(AuthError::Denied("a roomJoin token must have an identity (sub)".into()));
        }
        Ok(RoomAccess {
            identity: self.sub.clone(),
            name: self.name.clone().filter(|n| !n.is_empty()),
            grants: sfu::Grants {
                publish: v.can_publish != Some(false),
                subscribe: v.can_subscribe != Some(false),
                publish_data: v.can_publish_data != Some(false),
            },
        })
    }

    /// Whether the token may administer `room`: `roomAdmin` for that room, or for every room when
    /// the token names none.
    pub(crate) fn admin(&self, room: &str) -> Result<(), AuthError> {
        let v = &self.video;
        match (v.room_admin, v.room.as_deref()) {
            (true, None) => Ok(()),
            (true, Some(r)) if r == room => Ok(()),
            (true, Some(r)) => Err(AuthError::Denied(format!("the token administers room {r:?}, not {room:?}"))),
            (false, _) => Err(AuthError::Denied("this needs the roomAdmin grant".into())),
        }
    }

    /// Whether the token may create rooms through the admin API.
    pub(crate) fn create(&self) -> Result<(), AuthError> {
        if self.video.room_create { Ok(()) } else { Err(AuthError::Denied("this needs the roomCreate grant".into())) }
    }

    /// Whether the token may read what the server holds (rooms, participants, statistics):
    /// `roomList`, or `roomAdmin` without a room.
    pub(crate) fn list(&self) -> Result<(), AuthError> {
        if self.video.room_list || (self.video.room_admin && self.video.room.is_none()) {
            Ok(())
        } else {
            Err(AuthError::Denied("this needs the roomList grant".into()))
        }
    }
}

/// The API keys: key -> secret. Empty: open mode, no tokens needed.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys(BTreeMap<String, String>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Keys {
    /// Keys from `key: secret` pairs, separated by commas or new lines (`CONFAB_KEYS`,
    /// `--keys`), as LiveKit's `LIVEKIT_KEYS` holds them.
    pub(crate) fn parse_pairs(text: &str) -> Result<Keys, String> {
        let mut keys = BTreeMap::new();
        for pair in text.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, secret)) = pair.split_once(':') else {
                return Err(format!("{:?}: expected KEY: SECRET", redact(pair)));
            };
            keys.insert(key.trim().to_string(), secret.trim().to_string());
        }
        Keys::new(keys)
    }

    /// Keys from a map, checked: keys non-empty and secrets at least [`MIN_SECRET_LEN`] long.
    pub(crate) fn new(keys: BTreeMap<String, String>) -> Result<Keys, String> {
        for (key, secret) in &keys {
            if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("API key {key:?}: a key is a non-empty word"));
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(format!(
                    "the secret of API key {key:?} has {} characters; use at least {MIN_SECRET_LEN} (e.g. `openssl rand -base64 32`)",
                    secret.len()
                ));
            }
        }
        Ok(Keys(keys))
    }

    /// Whether tokens are needed (some key is configured).
    pub(crate) fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The key names.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The secret of `key`.
    pub(crate) fn secret(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Check `token` whole (see the module docs) and return its claims.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed(format!("over {MAX_TOKEN_LEN} bytes")));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(AuthError::Malformed("a JWT has three parts separated by dots".into()));
        };
        // The algorithm first, from the header as written: `none` and every algorithm but
        // HS256 are refused by name before any other part is looked at.
        let header: RawHeader = decode_part(header, "header")?;
        if header.alg != "HS256" {
            return Err(AuthError::Algorithm(header.alg));
        }
        // Which secret to verify with: the (still unverified) issuer names it.
        let unverified: RawIssuer = decode_part(payload, "payload")?;
        let secret = self.secret(&unverified.iss).ok_or(AuthError::UnknownKey(unverified.iss))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => AuthError::Signature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                _ => AuthError::Malformed(e.to_string()),
            }
        })?;
        Ok(data.claims)
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
}

#[derive(Deserialize)]
struct RawIssuer {
    #[serde(default)]
    iss: String,
}

fn decode_part<T: for<'de> Deserialize<'de>>(part: &str, what: &str) -> Result<T, AuthError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::Malformed(format!("the {what} is not the JSON of a JWT: {e}")))
}

/// Sign `claims` with `secret` (HS256).
pub(crate) fn mint(claims: &Claims, secret: &str) -> Result<String, String> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes())).map_err(|e| e.to_string())
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The key part of a `key: secret` pair, for error messages that must not show a secret.
fn redact(pair: &str) -> String {
    let shown: String = pair.chars().take(4).collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests;
