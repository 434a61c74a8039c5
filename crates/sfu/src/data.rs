//! Data messages through the SFU: the frames participants send on their data channels, and the
//! limits on them (docs/protocol.md, "Data channels").
//!
//! A participant opens two data channels to the SFU, labelled [`RELIABLE`] (ordered, reliable)
//! and [`LOSSY`] (unordered, no retransmissions). What it sends on one is relayed, tagged with its
//! id, on the same kind of channel to the room or to the participants it names.
//!
//! Participant → SFU: `flags: u8`, `count: u8`, then `count` times (`len: u8`, `len` bytes of a
//! participant id), then the payload. `count` 0 is the whole room.
//! SFU → participant: `flags: u8`, `len: u8`, `len` bytes of the sender's id, then the payload.
//! Flags: [`TEXT`] (the payload is UTF-8 text), [`PRIVATE`] (SFU → participant only: it was sent
//! to named participants, not the room).

use std::time::{Duration, Instant};

use str0m::channel::ChannelId;

/// Label of the reliable, ordered channel.
pub const RELIABLE: &str = "confab";
/// Label of the unreliable, unordered channel.
pub const LOSSY: &str = "confab-lossy";
/// Flag: the payload is UTF-8 text.
pub const TEXT: u8 = 1;
/// Flag (SFU → participant): sent to named participants only.
pub const PRIVATE: u8 = 2;
/// The largest frame a participant may send (header and payload).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The most participants one frame may name.
pub const MAX_RECIPIENTS: usize = 64;

/// Bytes a participant may send per second, sustained, and in one burst.
const RATE: f64 = 8.0 * 1024.0 * 1024.0;
const BURST: f64 = 4.0 * 1024.0 * 1024.0;
/// Messages per second, sustained, and in one burst (many small messages cost more than bytes).
const MESSAGE_RATE: f64 = 2000.0;
const MESSAGE_BURST: f64 = 1000.0;
/// What may wait unsent to one participant, over all its channels (str0m's SCTP send buffer);
/// a reliable message that does not fit is dropped.
pub(crate) const MAX_BUFFERED: usize = 4 * 1024 * 1024;
/// What may wait on one participant's lossy channel before more is dropped.
pub(crate) const MAX_BUFFERED_LOSSY: usize = 256 * 1024;

/// A participant's two channels, once open.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    reliable: Option<ChannelId>,
    lossy: Option<ChannelId>,
}

impl Channels {
    pub(crate) fn get(&self, kind: Kind) -> Option<ChannelId> {
        match kind {
            Kind::Reliable => self.reliable,
            Kind::Lossy => self.lossy,
        }
    }

    pub(crate) fn kind_of(&self, id: ChannelId) -> Option<Kind> {
        if self.reliable == Some(id) {
            Some(Kind::Reliable)
        } else if self.lossy == Some(id) {
            Some(Kind::Lossy)
        } else {
            None
        }
    }

    pub(crate) fn opened(&mut self, label: &str, id: ChannelId) {
        match Kind::of_label(label) {
            Some(Kind::Reliable) => self.reliable = Some(id),
            Some(Kind::Lossy) => self.lossy = Some(id),
            None => {}
        }
    }

    pub(crate) fn closed(&mut self, id: ChannelId) {
        if self.reliable == Some(id) {
            self.reliable = None;
        }
        if self.lossy == Some(id) {
            self.lossy = None;
        }
    }
}

/// Which of a participant's two channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Reliable,
    Lossy,
}

impl Kind {
    pub(crate) fn of_label(label: &str) -> Option<Kind> {
        match label {
            RELIABLE => Some(Kind::Reliable),
            LOSSY => Some(Kind::Lossy),
            _ => None,
        }
    }
}

/// Why a frame from a participant is not relayed (the core only counts and logs it: nothing
/// goes back to the sender, so this stays apart from the crate's [`crate::Error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Larger than [`MAX_MESSAGE`].
    #[error("a data message of {0} bytes is over the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    /// Shorter than its header says.
    #[error("a data message shorter than its header")]
    Truncated,
    /// Names more than [`MAX_RECIPIENTS`] participants.
    #[error("a data message to {0} participants (at most {MAX_RECIPIENTS})")]
    TooManyRecipients(usize),
    /// A recipient id is not UTF-8.
    #[error("a data message to a participant id that is not UTF-8")]
    BadRecipient,
}

/// A frame from a participant, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The flags (only [`TEXT`] is kept).
    pub flags: u8,
    /// The participants it is for; empty: the whole room.
    pub to: Vec<&'a str>,
    /// What to relay.
    pub payload: &'a [u8],
}

/// Parse a frame a participant sent.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let [flags, count, rest @ ..] = bytes else { return Err(FrameError::Truncated) };
    let count = usize::from(*count);
    if count > MAX_RECIPIENTS {
        return Err(FrameError::TooManyRecipients(count));
    }
    let mut rest = rest;
    let mut to = Vec::with_capacity(count);
    for _ in 0..count {
        let [len, tail @ ..] = rest else { return Err(FrameError::Truncated) };
        let len = usize::from(*len);
        let id = tail.get(..len).ok_or(FrameError::Truncated)?;
        to.push(std::str::from_utf8(id).map_err(|_| FrameError::BadRecipient)?);
        rest = &tail[len..];
    }
    Ok(Frame { flags: flags & TEXT, to, payload: rest })
}

/// The frame recipients get: `flags`, the sender's id, the payload. `None` when the id does not
/// fit its one-byte length.
pub fn relayed_frame(flags: u8, from: &str, payload: &[u8]) -> Option<Vec<u8>> {
    let len = u8::try_from(from.len()).ok()?;
    let mut out = Vec::with_capacity(2 + from.len() + payload.len());
    out.push(flags);
    out.push(len);
    out.extend_from_slice(from.as_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

/// A participant's allowance of data: bytes and messages per second, with bursts.
#[derive(Debug, Clone)]
pub(crate) struct Allowance {
    bytes: f64,
    messages: f64,
    at: Option<Instant>,
}

impl Default for Allowance {
    fn default() -> Self {
        Allowance { bytes: BURST, messages: MESSAGE_BURST, at: None }
    }
}

impl Allowance {
    /// Take `len` bytes (one message) at `now`; false (nothing taken) when over the rate.
    pub(crate) fn take(&mut self, now: Instant, len: usize) -> bool {
        if let Some(at) = self.at {
            let dt = now.saturating_duration_since(at).min(Duration::from_secs(10)).as_secs_f64();
            self.bytes = (self.bytes + dt * RATE).min(BURST);
            self.messages = (self.messages + dt * MESSAGE_RATE).min(MESSAGE_BURST);
        }
        self.at = Some(now);
        let len = len as f64;
        if self.bytes < len || self.messages < 1.0 {
            return false;
        }
        self.bytes -= len;
        self.messages -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_with_and_without_recipients() {
        assert_eq!(parse_frame(&[1, 0, b'h', b'i']).unwrap(), Frame { flags: TEXT, to: vec![], payload: b"hi" });
        let f = parse_frame(&[0, 2, 3, b'a', b'd', b'a', 1, b'b', 9, 9]).unwrap();
        assert_eq!(f, Frame { flags: 0, to: vec!["ada", "b"], payload: &[9, 9] });
        // Unknown flags are dropped; an empty payload is a message too.
        assert_eq!(parse_frame(&[0xff, 0]).unwrap(), Frame { flags: TEXT, to: vec![], payload: b"" });
    }

    #[test]
    fn bad_frames_are_refused() {
        assert_eq!(parse_frame(&[]), Err(FrameError::Truncated));
        assert_eq!(parse_frame(&[1]), Err(FrameError::Truncated));
        assert_eq!(parse_frame(&[0, 1]), Err(FrameError::Truncated));
        assert_eq!(parse_frame(&[0, 1, 5, b'a']), Err(FrameError::Truncated));
        assert_eq!(parse_frame(&[0, 1, 1, 0xff]), Err(FrameError::BadRecipient));
        assert_eq!(parse_frame(&[0, 65]), Err(FrameError::TooManyRecipients(65)));
        assert_eq!(parse_frame(&vec![0; MAX_MESSAGE + 1]), Err(FrameError::TooLarge(MAX_MESSAGE + 1)));
    }

    #[test]
    fn relayed_frames_carry_the_sender() {
        assert_eq!(relayed_frame(TEXT | PRIVATE, "ada", b"hi").unwrap(), vec![3, 3, b'a', b'd', b'a', b'h', b'i']);
        assert_eq!(relayed_frame(0, &"x".repeat(256), b""), None);
    }

    #[test]
    fn the_allowance_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut a = Allowance::default();
        assert!(a.take(t0, BURST as usize));
        assert!(!a.take(t0, 1), "the burst is spent");
        // A tenth of a second brings a tenth of the rate back.
        assert!(a.take(t0 + Duration::from_millis(100), (RATE / 10.0) as usize - 10));
        assert!(!a.take(t0 + Duration::from_millis(100), 1000));
        // Messages are counted too.
        let mut a = Allowance::default();
        for _ in 0..MESSAGE_BURST as usize {
            assert!(a.take(t0, 1));
        }
        assert!(!a.take(t0, 1));
        assert!(a.take(t0 + Duration::from_millis(10), 1));
    }
}
