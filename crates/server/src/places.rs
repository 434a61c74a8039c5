//! Reconnection (docs/protocol.md, "Reconnecting"): every joined WebSocket session holds a place,
//! with a secret token. When its socket is lost the session keeps the place for
//! `--reconnect-grace`; a new socket that joins with the participant's id and token is handed
//! to that session, which goes on with it where it was (the same participant, media never
//! stopped). A socket that takes over a place whose old socket still looks alive (a network
//! change leaves it hanging) replaces it.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::ws::WebSocket;
use tokio::sync::mpsc;

/// The places of the sessions of this server, by participant id.
#[derive(Default)]
pub(crate) struct Places {
    inner: Mutex<HashMap<String, Place>>,
}

struct Place {
    token: String,
    handoff: mpsc::Sender<WebSocket>,
}

impl Places {
    /// A place for `participant`: its token, and where sockets that take it back arrive.
    pub(crate) fn open(&self, participant: &str) -> (String, mpsc::Receiver<WebSocket>) {
        let token = new_token();
        let (tx, rx) = mpsc::channel(1);
        let place = Place { token: token.clone(), handoff: tx };
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).insert(participant.to_string(), place);
        (token, rx)
    }

    /// The session of `participant` is over.
    pub(crate) fn close(&self, participant: &str) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).remove(participant);
    }

    /// Hand `socket` to the session holding `participant`'s place, if `token` is the place's;
    /// the socket back otherwise (no such place, a wrong token, or a handoff already waiting).
    pub(crate) fn hand_over(&self, participant: &str, token: &str, socket: WebSocket) -> Result<(), WebSocket> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.get(participant) {
            Some(place) if same(place.token.as_bytes(), token.as_bytes()) => place.handoff.try_send(socket).map_err(|e| match e {
                mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s) => s,
            }),
            _ => Err(socket),
        }
    }
}

/// Whether two secrets are equal, in a time that does not tell where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 128 random bits from the OS's generator, as hex.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    // Without the OS's generator nothing secret can be made; fastrand then (never seen).
    if getrandom::fill(&mut bytes).is_err() {
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_whole() {
        assert!(same(b"abcd", b"abcd"));
        assert!(!same(b"abcd", b"abce"));
        assert!(!same(b"abcd", b"abc"));
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
