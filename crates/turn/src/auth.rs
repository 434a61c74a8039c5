//! Credentials: MESSAGE-INTEGRITY (RFC 8489 §14.5), the long-term credential key (§9.2.2),
//! stateless nonces, and the TURN REST convention of coturn's `use-auth-secret` (username
//! `expiry:user`, password base64(HMAC-SHA1(secret, username))).

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

use crate::message::{HEADER_LEN, Message, MessageBuilder, attr};

type HmacSha1 = Hmac<Sha1>;

/// The length of a MESSAGE-INTEGRITY attribute: header and HMAC-SHA1.
const INTEGRITY_ATTR_LEN: usize = 4 + 20;

/// The key of long-term credentials: MD5(username ":" realm ":" password) (RFC 8489 §9.2.2;
/// the SASLprep of the password is left to the user: confab's passwords are ASCII).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

/// The password of a TURN REST username under `secret`: base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let mut mac = HmacSha1::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Ephemeral credentials for `user` that expire at `expiry` (Unix seconds): the username and
/// password a client puts in its `iceServers`.
pub fn ephemeral_credentials(secret: &[u8], user: &str, expiry: u64) -> (String, String) {
    let username = if user.is_empty() { expiry.to_string() } else { format!("{expiry}:{user}") };
    let password = rest_password(secret, &username);
    (username, password)
}

/// Why a request's credentials are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No MESSAGE-INTEGRITY (or no USERNAME, REALM or NONCE): 401 with a realm and nonce.
    Missing,
    /// The nonce is not one of ours, or has expired: 438 Stale Nonce with a fresh one.
    StaleNonce,
    /// Unknown user, an expired REST username, or a wrong HMAC: 401.
    Unauthorized,
}

/// Who may use the server, and the keys of its nonces.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The realm every client is told.
    pub realm: String,
    /// Static users: username -> password.
    pub users: HashMap<String, String>,
    /// The shared secret of TURN REST usernames, if they are taken.
    pub secret: Option<Vec<u8>>,
    /// The key that signs nonces (random, from the caller: this crate has no randomness).
    pub nonce_key: [u8; 16],
    /// How long a nonce is good for, in seconds.
    pub nonce_lifetime: u64,
}

impl Credentials {
    /// A fresh nonce, good until `now + nonce_lifetime` (Unix seconds): the expiry in hex and
    /// an HMAC of it, so that checking one needs no state.
    pub fn nonce(&self, now: u64) -> String {
        let expiry = now + self.nonce_lifetime;
        format!("{expiry:016x}{}", self.nonce_mac(expiry))
    }

    fn nonce_mac(&self, expiry: u64) -> String {
        let mut mac = HmacSha1::new_from_slice(&self.nonce_key).expect("HMAC takes a key of any length");
        mac.update(&expiry.to_be_bytes());
        mac.finalize().into_bytes()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `nonce` is one of ours and still good at `now`.
    pub fn nonce_valid(&self, nonce: &[u8], now: u64) -> bool {
        let Ok(nonce) = std::str::from_utf8(nonce) else { return false };
        if nonce.len() != 32 || !nonce.is_ascii() {
            return false;
        }
        let (expiry, mac) = nonce.split_at(16);
        let Ok(expiry) = u64::from_str_radix(expiry, 16) else { return false };
        expiry > now && self.nonce_mac(expiry) == mac
    }

    /// The password of `username` at `now` (Unix seconds): a static user's, or a REST
    /// username's whose expiry has not passed.
    pub fn password(&self, username: &str, now: u64) -> Option<String> {
        if let Some(p) = self.users.get(username) {
            return Some(p.clone());
        }
        let secret = self.secret.as_ref()?;
        let expiry = username.split(':').next()?.parse::<u64>().ok()?;
        (expiry > now).then(|| rest_password(secret, username))
    }

    /// Check a request's long-term credentials (RFC 8489 §9.2.4): on success the username and
    /// the key that signs the response.
    pub fn check(&self, request: &Message<'_>, now: u64) -> Result<(String, [u8; 16]), Refusal> {
        let (Some(username), Some(_realm), Some(nonce), Some(_)) = (
            request.get(attr::USERNAME),
            request.get(attr::REALM),
            request.get(attr::NONCE),
            request.integrity_at,
        ) else {
            return Err(Refusal::Missing);
        };
        if !self.nonce_valid(nonce, now) {
            return Err(Refusal::StaleNonce);
        }
        let username = std::str::from_utf8(username).map_err(|_| Refusal::Unauthorized)?;
        let password = self.password(username, now).ok_or(Refusal::Unauthorized)?;
        let key = long_term_key(username, &self.realm, &password);
        if !verify_integrity(request, &key) {
            return Err(Refusal::Unauthorized);
        }
        Ok((username.to_string(), key))
    }
}

/// Whether `message`'s MESSAGE-INTEGRITY is the HMAC-SHA1 under `key` of the message up to it,
/// with the header's length ending right after it (RFC 8489 §14.5).
pub fn verify_integrity(message: &Message<'_>, key: &[u8]) -> bool {
    let Some(at) = message.integrity_at else { return false };
    let raw = message.raw();
    let Some(stored) = raw.get(at + 4..at + INTEGRITY_ATTR_LEN) else { return false };
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes a key of any length");
    let length = (at + INTEGRITY_ATTR_LEN - HEADER_LEN) as u16;
    mac.update(&raw[..2]);
    mac.update(&length.to_be_bytes());
    mac.update(&raw[4..at]);
    mac.verify_slice(stored).is_ok()
}

impl MessageBuilder {
    /// The message, ending with MESSAGE-INTEGRITY under `key` and, if `fingerprint`, a
    /// FINGERPRINT after it.
    pub fn build_with_integrity(mut self, key: &[u8], fingerprint: bool) -> Vec<u8> {
        self.set_length(INTEGRITY_ATTR_LEN);
        let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(self.bytes());
        let hmac = mac.finalize().into_bytes();
        self.attr(attr::MESSAGE_INTEGRITY, &hmac);
        if fingerprint { self.build_with_fingerprint() } else { self.build() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Class, Method};

    /// RFC 5769 §2.1, the sample request: short-term credentials (the key is the password).
    const RFC5769_REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
        0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
        0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
        0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
    ];

    fn credentials() -> Credentials {
        Credentials {
            realm: "confab".into(),
            users: HashMap::from([("ada".to_string(), "lovelace".to_string())]),
            secret: Some(b"north".to_vec()),
            nonce_key: *b"0123456789abcdef",
            nonce_lifetime: 600,
        }
    }

    #[test]
    fn verifies_the_rfc_5769_request() {
        let m = Message::parse(&RFC5769_REQUEST).unwrap();
        assert_eq!(m.get(attr::USERNAME), Some(&b"evtj:h6vY"[..]));
        assert!(verify_integrity(&m, b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!verify_integrity(&m, b"VOkJxbRl1RmTxUk/WvJxBu"));
    }

    #[test]
    fn signs_what_it_verifies() {
        let key = long_term_key("ada", "confab", "lovelace");
        let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, *b"abcdefghijkl");
        b.attr(attr::USERNAME, b"ada").attr(attr::REALM, b"confab");
        for fingerprint in [false, true] {
            let bytes = b.clone().build_with_integrity(&key, fingerprint);
            let m = Message::parse(&bytes).unwrap();
            assert_eq!(m.fingerprint, fingerprint);
            assert!(verify_integrity(&m, &key));
            assert!(!verify_integrity(&m, &long_term_key("ada", "confab", "babbage")));
        }
    }

    #[test]
    fn rest_credentials_follow_coturn() {
        // coturn's use-auth-secret: the same HMAC-SHA1 of "expiry:user" under the secret, base64.
        let (user, pass) = ephemeral_credentials(b"north", "ada", 1_700_000_000);
        assert_eq!(user, "1700000000:ada");
        assert_eq!(pass, rest_password(b"north", "1700000000:ada"));
        assert_eq!(pass.len(), 28, "base64 of 20 bytes");
        let c = credentials();
        assert_eq!(c.password(&user, 1_699_999_999), Some(pass));
        assert_eq!(c.password(&user, 1_700_000_000), None, "expired");
        assert_eq!(c.password("ada", 5), Some("lovelace".into()));
        assert_eq!(c.password("grace", 5), None);
        assert_eq!(c.password("soon:x", 5), None);
    }

    #[test]
    fn nonces_expire_and_cannot_be_forged() {
        let c = credentials();
        let n = c.nonce(1000);
        assert!(c.nonce_valid(n.as_bytes(), 1000));
        assert!(c.nonce_valid(n.as_bytes(), 1599));
        assert!(!c.nonce_valid(n.as_bytes(), 1600));
        let forged = format!("{:016x}{}", 999_999u64, &n[16..]);
        assert!(!c.nonce_valid(forged.as_bytes(), 1000));
        assert!(!c.nonce_valid(b"", 1000));
        assert!(!c.nonce_valid("é".repeat(16).as_bytes(), 1000));
    }

    #[test]
    fn checks_a_request_step_by_step() {
        let c = credentials();
        let now = 1_000_000;
        let request = |user: &str, nonce: &str, password: &str| {
            let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, *b"abcdefghijkl");
            b.attr(attr::USERNAME, user.as_bytes()).attr(attr::REALM, b"confab").attr(attr::NONCE, nonce.as_bytes());
            b.build_with_integrity(&long_term_key(user, "confab", password), true)
        };
        let bare = MessageBuilder::new(Class::Request, Method::ALLOCATE, *b"abcdefghijkl").build();
        assert_eq!(c.check(&Message::parse(&bare).unwrap(), now), Err(Refusal::Missing));
        let nonce = c.nonce(now);
        let ok = request("ada", &nonce, "lovelace");
        assert_eq!(c.check(&Message::parse(&ok).unwrap(), now).map(|(u, _)| u), Ok("ada".into()));
        let wrong = request("ada", &nonce, "babbage");
        assert_eq!(c.check(&Message::parse(&wrong).unwrap(), now), Err(Refusal::Unauthorized));
        assert_eq!(c.check(&Message::parse(&ok).unwrap(), now + 600), Err(Refusal::StaleNonce));
        let (user, pass) = ephemeral_credentials(b"north", "bob", now + 60);
        let rest = request(&user, &nonce, &pass);
        assert!(c.check(&Message::parse(&rest).unwrap(), now).is_ok());
        assert_eq!(c.check(&Message::parse(&rest).unwrap(), now + 61), Err(Refusal::Unauthorized), "expired username");
    }
}
