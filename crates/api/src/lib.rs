//! Serve the exchange to traders: the node's HTTP JSON and WebSocket API over a backend
//! trait, the read model derived from committed blocks, and an in-process chain to run it on.
//!
//! # Pieces
//! - [`ApiBackend`]: what a chain provides (mempool admission, ledger reads, blocks). The
//!   validator node implements it over its consensus-driven chain; [`LocalChain`] implements
//!   it over a single in-process ledger with no consensus, for tests and one-machine use.
//! - [`FeedHub`] / [`ChainIndex`]: the read model. The backend publishes each committed
//!   block to the hub; the index derives book mirrors (with per-market sequence numbers and
//!   [`checksum`]s), the order-status index with its retention window, fills per account,
//!   trades, transaction outcomes, and a [`BlockFeed`] per block that every WebSocket
//!   connection shares.
//! - [`router`]: the axum routes under `/v1`, `/v1/ws`, `/v1/openapi.json` and `/metrics`,
//!   with JSON errors (`{code, message}`, see [`ApiError`]), a body limit, per-IP and
//!   per-account token buckets (cancels never limited), and strict request parsing (unknown
//!   fields are errors). [`serve`] runs it with client addresses recorded.
//! - [`wire`]: the JSON types, shared with the trader SDK.
//!
//! # Why it is built this way
//! Everything derivable from committed blocks is derived here once, so the node does not
//! rewrite it and every connection shares the same feed. The backend trait is therefore
//! narrow: it covers only what needs the mempool or the ledger. Reads never reach
//! consensus; a request that is malformed, oversized or over its rate limit is answered
//! before any backend call.
//!
//! The crate has no feature flags.

pub mod backend;
pub mod checksum;
pub mod convert;
pub mod error;
pub mod http;
pub mod hub;
pub mod index;
pub mod limit;
pub mod local;
pub mod wire;
pub mod ws;

pub use backend::{AccountAt, ApiBackend, BalanceProofAt, ChainInfo, CommittedBlock, DroppedTx};
pub use error::{ApiError, ApiResult, BackendError, ErrorBody, SubmitError, rejection_code};
pub use http::{ApiConfig, openapi_document, router, router_with_shutdown};
pub use hub::FeedHub;
pub use index::{BlockFeed, ChainIndex, HubConfig, PublishError};
pub use limit::{Quota, RateLimiter};
pub use local::{BlockProducer, Clock, LocalChain, LocalChainConfig, demo_genesis};
pub use ws::WsConfig;

use std::net::SocketAddr;
use std::sync::Arc;

/// Serve `router` on `listener` until `shutdown` resolves, recording each client's address
/// for the per-IP limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// An API server running in this process (see [`spawn_server`]); dropping it stops it.
#[derive(Debug)]
pub struct ServerHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// `http://ADDR`, the base URL of the API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish open requests and wait for the server to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Bind `addr` (port 0 picks a free port) and serve the API over `backend` in a task.
pub async fn spawn_server(
    backend: Arc<dyn ApiBackend>,
    config: ApiConfig,
    addr: SocketAddr,
) -> std::io::Result<ServerHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (closing, shutdown) = tokio::sync::watch::channel(false);
    let app = router_with_shutdown(backend, config, shutdown);
    let task = tokio::spawn(serve(listener, app, async move {
        let _ = stopped.await;
        // Close the WebSocket connections too, or the graceful shutdown waits on them.
        let _ = closing.send(true);
    }));
    Ok(ServerHandle {
        addr,
        stop: Some(stop),
        task,
    })
}
