//! The server's error enum: what can stop confab from starting or running.

use std::net::SocketAddr;

/// Why confab could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Error {
    /// A setting is invalid; the text names it.
    #[error("{0}")]
    Config(String),
    /// A socket could not be opened.
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Any other I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The SFU core refused its configuration.
    #[error("media: {0}")]
    Sfu(#[from] sfu::Error),
}
