//! The chain spec (`genesis.json`): everything every validator of a chain must agree on —
//! the ledger's genesis, the validator set with where to reach each validator, and the
//! consensus timing. A node refuses to start on a spec that does not validate.

use crate::error::NodeError;
use dex_consensus::{ConsensusConfig, StepTimeout, ValidatorSet};
use dex_p2p::{Multiaddr, PeerId, parse_addr, peer_id_from_ed25519};
use dex_state::{Genesis, Ledger};
use dex_types::AccountId;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Largest chain spec file read (a genesis with many allocations is a few MiB).
pub const SPEC_FILE_BYTES_MAX: u64 = 64 << 20;

/// One validator of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSpec {
    /// A name for logs and status lines.
    pub name: String,
    /// Its ed25519 public key (hex): signs its votes and proposals, and is its libp2p
    /// identity.
    pub public_key: AccountId,
    /// Voting power (positive).
    pub voting_power: u64,
    /// Where it listens for peers: `ip:port` or a multiaddr.
    pub p2p_address: String,
}

/// Consensus timing shared by all validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// Propose timeout in round 0, and what each later round adds.
    pub propose_ms: u64,
    /// Added to the propose timeout per round.
    pub propose_delta_ms: u64,
    /// Prevote timeout in round 0.
    pub prevote_ms: u64,
    /// Added to the prevote timeout per round.
    pub prevote_delta_ms: u64,
    /// Precommit timeout in round 0.
    pub precommit_ms: u64,
    /// Added to the precommit timeout per round.
    pub precommit_delta_ms: u64,
    /// How long a proposer waits for transactions before building its block.
    pub propose_batch_ms: u64,
    /// How often a validator re-sends its own messages of a round that lasts.
    pub rebroadcast_ms: u64,
    /// Most transactions in one block.
    pub block_txs_max: usize,
    /// How far a proposed block's time may be ahead of a validator's clock.
    pub block_time_ahead_max_ms: u64,
}

impl Default for ConsensusParams {
    /// Timing for validators on one host or a LAN: a block every few tens of milliseconds
    /// under load, a round that fails over within about a second.
    fn default() -> ConsensusParams {
        ConsensusParams {
            propose_ms: 1_000,
            propose_delta_ms: 500,
            prevote_ms: 500,
            prevote_delta_ms: 250,
            precommit_ms: 500,
            precommit_delta_ms: 250,
            propose_batch_ms: 20,
            rebroadcast_ms: 1_000,
            block_txs_max: 4_096,
            block_time_ahead_max_ms: 2_000,
        }
    }
}

/// The chain spec file: see the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// The ledger's genesis (chain id, time, assets, markets, allocations, limits).
    pub genesis: Genesis,
    /// The validators, in the order that gives their consensus indices.
    pub validators: Vec<ValidatorSpec>,
    /// Consensus timing.
    pub consensus: ConsensusParams,
}

impl ChainSpec {
    /// Read and check a spec file.
    pub fn load(path: &Path) -> Result<ChainSpec, NodeError> {
        let bytes = crate::files::read_bounded(path, SPEC_FILE_BYTES_MAX)?;
        let spec: ChainSpec = serde_json::from_slice(&bytes).map_err(|e| NodeError::File {
            path: path.to_owned(),
            detail: format!("not a valid chain spec: {e}"),
        })?;
        spec.check().map_err(|detail| NodeError::File {
            path: path.to_owned(),
            detail,
        })?;
        Ok(spec)
    }

    /// Write the spec as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), NodeError> {
        let text = serde_json::to_string_pretty(self).expect("bug: a chain spec serialises");
        crate::files::write_file(path, text.as_bytes(), false)
    }

    /// Every rule a node relies on: the genesis builds a ledger, the validator set is
    /// valid, names and addresses are usable, the timing is sane.
    pub fn check(&self) -> Result<(), String> {
        Ledger::from_genesis(&self.genesis).map_err(|e| format!("genesis: {e}"))?;
        self.validator_set()
            .map_err(|e| format!("validators: {e}"))?;
        for (validator, peer) in self.validators.iter().zip(self.validator_peers()) {
            let address = parse_addr(&validator.p2p_address)
                .map_err(|e| format!("validator {:?}: p2p_address: {e}", validator.name))?;
            if let Some(named) = dex_p2p::peer_id_of_addr(&address)
                && named != peer
            {
                return Err(format!(
                    "validator {:?}: p2p_address names peer {named}, but its key is peer {peer}",
                    validator.name
                ));
            }
        }
        let c = &self.consensus;
        if c.block_txs_max == 0 || c.block_txs_max > dex_types::MAX_BLOCK_TXS {
            return Err(format!(
                "consensus.block_txs_max must be 1..={}",
                dex_types::MAX_BLOCK_TXS
            ));
        }
        if c.propose_ms <= c.propose_batch_ms {
            return Err(
                "consensus.propose_ms must exceed propose_batch_ms, or round-0 proposals miss their timeout"
                    .to_owned(),
            );
        }
        if c.prevote_ms == 0 || c.precommit_ms == 0 {
            return Err("consensus timeouts must be positive".to_owned());
        }
        Ok(())
    }

    /// The validator set, in spec order.
    pub fn validator_set(&self) -> Result<ValidatorSet, dex_consensus::ValidatorSetError> {
        ValidatorSet::new(
            self.validators
                .iter()
                .map(|v| (v.public_key.0, v.voting_power)),
        )
    }

    /// The consensus configuration every validator runs.
    pub fn consensus_config(&self) -> ConsensusConfig {
        let c = &self.consensus;
        let mut config = ConsensusConfig::new(dex_consensus::ChainId(self.genesis.chain_id.0));
        config.propose = StepTimeout {
            base_ms: c.propose_ms,
            delta_ms: c.propose_delta_ms,
        };
        config.prevote = StepTimeout {
            base_ms: c.prevote_ms,
            delta_ms: c.prevote_delta_ms,
        };
        config.precommit = StepTimeout {
            base_ms: c.precommit_ms,
            delta_ms: c.precommit_delta_ms,
        };
        config.propose_batch_ms = c.propose_batch_ms;
        config.rebroadcast_ms = c.rebroadcast_ms;
        config
    }

    /// The p2p network id: peers of different chains do not talk.
    pub fn network_id(&self) -> String {
        // The genesis hash tells apart two test chains with the same id; 16 hex digits keep
        // the id within the p2p layer's 64 characters.
        let hash = self.genesis.hash().to_string();
        format!(
            "dex-{}-{}",
            self.genesis.chain_id.0,
            &hash[..16.min(hash.len())]
        )
    }

    /// The libp2p peer id of each validator, in spec order.
    pub fn validator_peers(&self) -> Vec<PeerId> {
        self.validators
            .iter()
            .map(|v| {
                peer_id_from_ed25519(&v.public_key.0)
                    .expect("bug: a checked validator key is a valid ed25519 key")
            })
            .collect()
    }

    /// The dialable address (`…/p2p/<peer id>`) of every validator except `except`.
    pub fn validator_addresses(&self, except: Option<&AccountId>) -> Vec<Multiaddr> {
        self.validators
            .iter()
            .zip(self.validator_peers())
            .filter(|(v, _)| Some(&v.public_key) != except)
            .map(|(v, peer)| {
                let address =
                    parse_addr(&v.p2p_address).expect("bug: a checked validator address parses");
                // An address that already names the peer keeps it (`check` refuses one
                // that names another peer).
                address.clone().with_p2p(peer).unwrap_or(address)
            })
            .collect()
    }

    /// The index of the validator with this key.
    pub fn validator_index(&self, key: &AccountId) -> Option<usize> {
        self.validators.iter().position(|v| &v.public_key == key)
    }
}
