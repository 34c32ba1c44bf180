//! The feed hub: the read model behind a lock, and the broadcast of derived block feeds.
//!
//! A backend calls [`FeedHub::publish`] once per committed block, in height order. The hub
//! indexes the block first and broadcasts it second, so a subscriber that receives block
//! `h` and then reads over HTTP sees at least `h`; and a subscriber that subscribes, then
//! reads a snapshot, can drop any broadcast feed the snapshot already covers.

use crate::backend::{ChainInfo, CommittedBlock};
use crate::index::{BlockFeed, ChainIndex, HubConfig, PublishError};
use dex_state::Ledger;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::broadcast;

/// See the module docs.
#[derive(Debug)]
pub struct FeedHub {
    index: RwLock<ChainIndex>,
    sender: broadcast::Sender<Arc<BlockFeed>>,
    chain: Arc<ChainInfo>,
}

impl FeedHub {
    /// A hub for a chain whose committed state is `ledger`.
    pub fn new(chain: ChainInfo, ledger: &Ledger, config: HubConfig) -> FeedHub {
        let chain = Arc::new(chain);
        let (sender, _) = broadcast::channel(config.broadcast_capacity.max(1));
        FeedHub {
            index: RwLock::new(ChainIndex::new(chain.clone(), ledger, config)),
            sender,
            chain,
        }
    }

    /// The chain's fixed facts.
    pub fn chain(&self) -> &Arc<ChainInfo> {
        &self.chain
    }

    /// Index a committed block (the next height) and send its feed to subscribers.
    pub fn publish(&self, block: CommittedBlock) -> Result<Arc<BlockFeed>, PublishError> {
        let feed = self.write().apply(Arc::new(block))?;
        // No subscriber is not an error.
        let _ = self.sender.send(feed.clone());
        Ok(feed)
    }

    /// Receive every feed published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BlockFeed>> {
        self.sender.subscribe()
    }

    /// Read the index.
    pub fn read(&self) -> RwLockReadGuard<'_, ChainIndex> {
        // A panic while indexing leaves the index as it was before the block at worst;
        // reads of it stay meaningful.
        self.index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ChainIndex> {
        self.index
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A retained block by height.
    pub fn block(&self, height: u64) -> Option<Arc<CommittedBlock>> {
        self.read().block(height)
    }

    /// Number of live subscribers (WebSocket connections).
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}
