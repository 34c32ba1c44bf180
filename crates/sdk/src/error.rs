//! The SDK's errors.

use dex_types::{ConversionError, MarketId};

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The node could not be reached, or the connection broke (retryable).
    #[error("cannot reach the node: {0}")]
    Transport(String),
    /// The node answered with an error: its stable code and message.
    #[error("the node refused: {code}: {message} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's stable error code (`insufficient_funds`, `rate_limited`, ...).
        code: String,
        /// The node's message.
        message: String,
    },
    /// The node's answer was not what the API promises.
    #[error("unexpected answer from the node: {0}")]
    Protocol(String),
    /// A decimal price or size is not a whole number of ticks or lots (or is zero,
    /// negative, too large); nothing was sent.
    #[error("{0}")]
    Conversion(#[from] ConversionError),
    /// The chain does not list this market.
    #[error("market {0} is not listed on this chain")]
    UnknownMarket(MarketId),
    /// The call signs a transaction but the client has no key.
    #[error("this call needs a key; load one with --key or TraderKey::load")]
    NoKey,
    /// A key file could not be created, read or used.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// A proof or certificate did not verify.
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    /// A local book could not take an update.
    #[error(transparent)]
    Book(#[from] crate::book::BookError),
    /// The wait for a commit or an answer ran out.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl SdkError {
    /// The API error code, if the node answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SdkError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether retrying the same request may succeed (the node was unreachable, busy or
    /// rate-limiting).
    pub fn is_retryable(&self) -> bool {
        match self {
            SdkError::Transport(_) | SdkError::Timeout(_) => true,
            SdkError::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<reqwest::Error> for SdkError {
    fn from(error: reqwest::Error) -> SdkError {
        if error.is_decode() {
            SdkError::Protocol(error.to_string())
        } else {
            SdkError::Transport(error.to_string())
        }
    }
}

/// A result with [`SdkError`].
pub type Result<T, E = SdkError> = std::result::Result<T, E>;
