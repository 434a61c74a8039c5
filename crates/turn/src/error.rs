//! Why a datagram is not a STUN message this crate can take.

/// A STUN message that could not be parsed. Network input: every variant is an answer (a
/// 400 or a silent drop), never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than the 20-byte STUN header.
    #[error("shorter than a STUN header ({0} bytes)")]
    TooShort(usize),
    /// The first two bits are not zero, or the magic cookie is missing: not STUN.
    #[error("not a STUN message")]
    NotStun,
    /// The header's length field disagrees with the datagram, or is not a multiple of 4.
    #[error("message length {declared} does not fit the {actual} bytes received")]
    BadLength {
        /// What the header says.
        declared: usize,
        /// What arrived after the header.
        actual: usize,
    },
    /// An attribute runs past the end of the message.
    #[error("attribute {0:#06x} runs past the end of the message")]
    AttributeOverflow(u16),
    /// More attributes than a message may carry.
    #[error("more than {0} attributes")]
    TooManyAttributes(usize),
    /// An attribute other than FINGERPRINT follows FINGERPRINT, or one other than FINGERPRINT
    /// follows MESSAGE-INTEGRITY.
    #[error("attribute {0:#06x} after MESSAGE-INTEGRITY or FINGERPRINT")]
    AttributeAfterIntegrity(u16),
    /// The FINGERPRINT attribute does not match the message.
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
    /// An attribute's value is malformed (wrong length, unknown address family...).
    #[error("malformed attribute {0:#06x}")]
    BadAttribute(u16),
}
