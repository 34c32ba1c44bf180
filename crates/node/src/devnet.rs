//! Local networks: `dexd init` writes a chain (spec, one home per validator, funded trader
//! keys), and `dexd devnet` runs one — validator processes on 127.0.0.1 with real libp2p
//! and RocksDB, a market maker and a taker on each of two markets, and a status line every
//! second.

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::keys::ValidatorKey;
use crate::spec::{ChainSpec, ConsensusParams, ValidatorSpec};
use dex_state::{Allocation, Genesis, Limits};
use dex_types::{
    AccountId, Amount, AssetId, AssetSpec, ChainId, Keypair, MarketId, MarketSpec, SizeLots,
    TimestampMs,
};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};

/// What `init` lays out.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The directory to write (must not hold a chain already).
    pub dir: PathBuf,
    /// Validators.
    pub validators: usize,
    /// Chain id.
    pub chain_id: u64,
    /// Validator `i` listens for peers on `p2p_base_port + i`.
    pub p2p_base_port: u16,
    /// Validator `i` serves its API on `api_base_port + i`.
    pub api_base_port: u16,
    /// Funded trader keys written under `traders/`.
    pub traders: usize,
    /// Genesis time (ms since the Unix epoch).
    pub genesis_time_ms: u64,
}

/// The markets of an initialised chain: BTC-USDC (1) and ETH-USDC (2).
pub const MARKETS: [(MarketId, &str, Decimal); 2] = [
    (
        MarketId(1),
        "BTC-USDC",
        Decimal::from_parts(60_000, 0, 0, false, 0),
    ),
    (
        MarketId(2),
        "ETH-USDC",
        Decimal::from_parts(3_000, 0, 0, false, 0),
    ),
];

/// The genesis of an initialised chain: USDC, BTC and ETH, the two [`MARKETS`], and every
/// trader funded with all three assets.
pub fn devnet_genesis(chain_id: u64, genesis_time_ms: u64, traders: &[AccountId]) -> Genesis {
    let usdc = AssetId(0);
    let btc = AssetId(1);
    let eth = AssetId(2);
    let mut allocations = Vec::new();
    for trader in traders {
        for (asset, amount) in [
            (usdc, 10_000_000u128 * 1_000_000),
            (btc, 100u128 * 100_000_000),
            (eth, 2_000u128 * 100_000_000),
        ] {
            allocations.push(Allocation {
                account: *trader,
                asset,
                amount: Amount(amount),
            });
        }
    }
    let market = |id, base| MarketSpec {
        id,
        base,
        quote: usdc,
        tick_size: Decimal::new(1, 2),
        lot_size: Decimal::new(1, 4),
        min_size_lots: SizeLots(1),
        maker_fee_bps: -1,
        taker_fee_bps: 5,
    };
    Genesis {
        chain_id: ChainId(chain_id),
        genesis_time: TimestampMs(genesis_time_ms),
        assets: vec![
            AssetSpec {
                id: usdc,
                symbol: "USDC".into(),
                decimals: 6,
            },
            AssetSpec {
                id: btc,
                symbol: "BTC".into(),
                decimals: 8,
            },
            AssetSpec {
                id: eth,
                symbol: "ETH".into(),
                decimals: 8,
            },
        ],
        markets: vec![market(MarketId(1), btc), market(MarketId(2), eth)],
        allocations,
        fee_account: Keypair::from_seed([0xfe; 32]).account_id(),
        limits: Limits::default(),
    }
}

/// Where `init` put validator `i`'s files.
pub fn validator_home(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("v{i}"))
}

/// The node configuration file of validator `i`.
pub fn node_config_path(dir: &Path, i: usize) -> PathBuf {
    validator_home(dir, i).join("node.json")
}

/// The trader key file `i` (1-based).
pub fn trader_key_path(dir: &Path, i: usize) -> PathBuf {
    dir.join("traders").join(format!("trader-{i}.json"))
}

/// Write a chain: `genesis.json`, `v<i>/{validator.key,node.json}` and
/// `traders/trader-<i>.json`. Refuses a directory that already holds a chain spec.
pub fn init(options: &InitOptions) -> Result<ChainSpec, NodeError> {
    let spec_path = options.dir.join("genesis.json");
    if spec_path.exists() {
        return Err(NodeError::File {
            path: spec_path,
            detail: "already exists; choose another directory or remove it".into(),
        });
    }
    if options.validators == 0 {
        return Err(NodeError::Config(
            "a chain needs at least one validator".into(),
        ));
    }
    let mut traders = Vec::new();
    for i in 1..=options.traders {
        let key = dex_sdk::TraderKey::generate()
            .map_err(|e| NodeError::Config(format!("trader key: {e}")))?;
        let path = trader_key_path(&options.dir, i);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| NodeError::File {
                path: parent.to_owned(),
                detail: e.to_string(),
            })?;
        }
        key.save(&path).map_err(|e| NodeError::File {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        traders.push(key.account());
    }
    let mut validators = Vec::new();
    for i in 0..options.validators {
        let key = ValidatorKey::generate()?;
        let home = validator_home(&options.dir, i);
        key.save(&home.join("validator.key"))?;
        let port = port_of(options.p2p_base_port, i)?;
        validators.push(ValidatorSpec {
            name: format!("v{i}"),
            public_key: key.public_key(),
            voting_power: 1,
            p2p_address: format!("127.0.0.1:{port}"),
        });
        let api_port = port_of(options.api_base_port, i)?;
        let config = NodeConfig::new(
            format!("v{i}"),
            PathBuf::from("../genesis.json"),
            Some(PathBuf::from("validator.key")),
            PathBuf::from("data"),
            format!("127.0.0.1:{port}"),
            format!("127.0.0.1:{api_port}")
                .parse()
                .expect("bug: a loopback address parses"),
        );
        config.save(&home.join("node.json"))?;
    }
    let spec = ChainSpec {
        genesis: devnet_genesis(options.chain_id, options.genesis_time_ms, &traders),
        validators,
        consensus: ConsensusParams::default(),
    };
    spec.check().map_err(NodeError::Config)?;
    spec.save(&spec_path)?;
    Ok(spec)
}

fn port_of(base: u16, i: usize) -> Result<u16, NodeError> {
    u16::try_from(i)
        .ok()
        .and_then(|i| base.checked_add(i))
        .ok_or_else(|| NodeError::Config(format!("port {base} + {i} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_a_chain_that_validates_and_refuses_to_overwrite_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = InitOptions {
            dir: dir.path().to_owned(),
            validators: 4,
            chain_id: 7,
            p2p_base_port: 40_000,
            api_base_port: 41_000,
            traders: 3,
            genesis_time_ms: 1_700_000_000_000,
        };
        let spec = init(&options).unwrap();
        assert_eq!(spec.validators.len(), 4);
        assert_eq!(spec.genesis.markets.len(), 2);
        let loaded = ChainSpec::load(&dir.path().join("genesis.json")).unwrap();
        assert_eq!(loaded, spec);
        for i in 0..4 {
            let config = NodeConfig::load(&node_config_path(dir.path(), i)).unwrap();
            let key = ValidatorKey::load(config.key_file.as_ref().unwrap()).unwrap();
            assert_eq!(spec.validator_index(&key.public_key()), Some(i));
            assert_eq!(
                config.chain_spec,
                validator_home(dir.path(), i).join("../genesis.json")
            );
        }
        for i in 1..=3 {
            let key = dex_sdk::TraderKey::load(&trader_key_path(dir.path(), i)).unwrap();
            assert!(
                spec.genesis
                    .allocations
                    .iter()
                    .any(|a| a.account == key.account())
            );
        }
        // Each validator dials the three others, by peer id.
        let addresses = spec.validator_addresses(Some(&spec.validators[0].public_key));
        assert_eq!(addresses.len(), 3);
        assert!(
            addresses
                .iter()
                .all(|a| dex_p2p::peer_id_of_addr(a).is_some())
        );
        assert!(
            init(&options).is_err(),
            "an existing chain is never overwritten"
        );
    }

    #[test]
    fn a_spec_with_a_bad_validator_or_timing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = InitOptions {
            dir: dir.path().to_owned(),
            validators: 1,
            chain_id: 7,
            p2p_base_port: 40_000,
            api_base_port: 41_000,
            traders: 0,
            genesis_time_ms: 1,
        };
        let spec = init(&options).unwrap();
        let mut bad = spec.clone();
        bad.validators[0].voting_power = 0;
        assert!(bad.check().is_err());
        let mut bad = spec.clone();
        bad.validators[0].p2p_address = "nowhere".into();
        assert!(bad.check().is_err());
        let mut bad = spec.clone();
        bad.consensus.propose_ms = bad.consensus.propose_batch_ms;
        assert!(bad.check().is_err());
        let mut bad = spec;
        let other = ValidatorKey::from_seed([3; 32]);
        let peer = dex_p2p::peer_id_from_ed25519(&other.public_key().0).unwrap();
        bad.validators[0].p2p_address = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}");
        assert!(
            bad.check().is_err(),
            "an address naming another peer is refused"
        );
    }
}
