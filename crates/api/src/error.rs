//! API errors: a stable machine code, an HTTP status and a human message.
//!
//! Every error leaves the API as JSON `{"code": "...", "message": "..."}`. Codes are part of
//! the API contract: clients branch on them, so a code is never renamed, only added.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dex_state::{NonceError, Rejection};
use dex_types::{DecodeError, SignatureError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `rate_limited` or `insufficient_funds`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// An error the API answers with: status, stable code, message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The message for a person.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is not well-formed (bad path or query value, bad hex).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404: the thing asked for does not exist (or is past the retention window).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 429: the client sent too many requests.
    pub fn rate_limited(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }

    /// 503: the backend cannot answer now.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }

    /// A transaction whose bytes could not be decoded.
    pub fn from_decode(error: &DecodeError) -> ApiError {
        match error {
            DecodeError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "tx_too_large",
                error.to_string(),
            ),
            DecodeError::Invalid(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_tx", error.to_string())
            }
            DecodeError::Malformed { .. } | DecodeError::TrailingBytes { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_tx", error.to_string())
            }
        }
    }

    /// A transaction the ledger's admission check refused.
    pub fn from_rejection(rejection: &Rejection) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            rejection_code(rejection),
            rejection.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// Why a backend refused to take a transaction into its mempool.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The signature does not verify for the signer.
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// The ledger's admission check refused it (nonce, funds, market, agent, ...).
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// The same transaction is already waiting in the mempool.
    #[error("the transaction is already pending")]
    AlreadyPending,
    /// Another pending transaction of the same signer uses this nonce.
    #[error("nonce {nonce} is already used by a pending transaction of this signer")]
    NoncePending {
        /// The nonce.
        nonce: u64,
    },
    /// The mempool holds its maximum of transactions; try again shortly.
    #[error("the mempool is full ({capacity} transactions); try again shortly")]
    MempoolFull {
        /// The mempool's capacity.
        capacity: usize,
    },
    /// The mempool holds its maximum of bytes; try again shortly.
    #[error("the mempool holds its maximum of {bytes_max} bytes; try again shortly")]
    MempoolBytesFull {
        /// The byte budget.
        bytes_max: usize,
    },
    /// The signer has as many pending transactions as one signer may; wait for a block.
    #[error(
        "the signer already has {pending} pending transactions, the most allowed; wait for the next block"
    )]
    SignerLimit {
        /// Its pending transactions.
        pending: usize,
    },
    /// The node cannot take transactions now (syncing, shutting down).
    #[error("the node cannot take transactions now: {0}")]
    Unavailable(String),
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> ApiError {
        match &error {
            SubmitError::BadSignature(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_signature", error.to_string())
            }
            SubmitError::Rejected(rejection) => ApiError::from_rejection(rejection),
            SubmitError::AlreadyPending => {
                ApiError::new(StatusCode::CONFLICT, "already_pending", error.to_string())
            }
            SubmitError::NoncePending { .. } => {
                ApiError::new(StatusCode::CONFLICT, "nonce_pending", error.to_string())
            }
            SubmitError::MempoolFull { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mempool_full",
                error.to_string(),
            ),
            SubmitError::MempoolBytesFull { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mempool_full",
                error.to_string(),
            ),
            SubmitError::SignerLimit { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "signer_limit",
                error.to_string(),
            ),
            SubmitError::Unavailable(_) => ApiError::unavailable(error.to_string()),
        }
    }
}

/// A read the backend could not serve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot answer now (storage error, shutting down).
    #[error("the node cannot answer now: {0}")]
    Unavailable(String),
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> ApiError {
        ApiError::unavailable(error.to_string())
    }
}

/// The stable code of a ledger rejection, as sent in errors and transaction outcomes.
pub fn rejection_code(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::WrongChain { .. } => "wrong_chain",
        Rejection::Expired { .. } => "expired",
        Rejection::Invalid(_) => "invalid_tx",
        Rejection::UnknownAccount { .. } => "unknown_account",
        Rejection::NotAnAgent { .. } => "not_an_agent",
        Rejection::AgentExpired { .. } => "agent_expired",
        Rejection::AgentMarket { .. } => "agent_market",
        Rejection::AgentRate { .. } => "agent_rate",
        Rejection::AgentAction { .. } => "agent_action",
        Rejection::Nonce(NonceError::Replayed { .. }) => "nonce_replayed",
        Rejection::Nonce(NonceError::TooOld { .. }) => "nonce_too_old",
        Rejection::UnknownMarket { .. } => "unknown_market",
        Rejection::UnknownAsset { .. } => "unknown_asset",
        Rejection::SizeBelowMinimum { .. } => "size_below_minimum",
        Rejection::SizeTooLarge { .. } => "size_too_large",
        Rejection::PriceTooHigh { .. } => "price_too_high",
        Rejection::InsufficientFunds { .. } => "insufficient_funds",
        Rejection::DuplicateClientOrderId { .. } => "duplicate_client_order_id",
        Rejection::TooManyOpenOrders { .. } => "too_many_open_orders",
        Rejection::TooManyAgents { .. } => "too_many_agents",
        Rejection::UnknownOrder { .. } => "unknown_order",
        Rejection::UnknownClientOrder { .. } => "unknown_client_order",
        Rejection::PostOnlyWouldCross => "post_only_would_cross",
        Rejection::OrderAlreadyExpired { .. } => "order_already_expired",
        Rejection::BookFull { .. } => "book_full",
        Rejection::ModifyNoChange => "modify_no_change",
        Rejection::TooManyAccounts { .. } => "too_many_accounts",
        Rejection::UnknownAgent { .. } => "unknown_agent",
        Rejection::BatchLeg { .. } => "batch_leg_failed",
    }
}

/// A result with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::{ClientOrderId, MarketId};

    #[test]
    fn rejections_map_to_stable_codes_and_422() {
        let error = ApiError::from_rejection(&Rejection::UnknownMarket {
            market: MarketId(9),
        });
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.code, "unknown_market");
        assert!(error.message.contains('9'));
        let leg = Rejection::BatchLeg {
            leg: 1,
            reason: Box::new(Rejection::DuplicateClientOrderId {
                client_order_id: ClientOrderId(4),
            }),
        };
        assert_eq!(rejection_code(&leg), "batch_leg_failed");
        assert_eq!(
            rejection_code(&Rejection::Nonce(NonceError::TooOld {
                nonce: 1,
                smallest: 2
            })),
            "nonce_too_old"
        );
    }

    #[test]
    fn submit_errors_have_distinct_statuses() {
        let full: ApiError = SubmitError::MempoolFull { capacity: 3 }.into();
        assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
        let dup: ApiError = SubmitError::AlreadyPending.into();
        assert_eq!(dup.status, StatusCode::CONFLICT);
        let nonce: ApiError = SubmitError::NoncePending { nonce: 5 }.into();
        assert_eq!(nonce.code, "nonce_pending");
    }
}
