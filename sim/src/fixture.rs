//! The simulated chain: genesis (assets, two markets, funded traders), validator keys and
//! the configurations every simulated validator runs.

use crate::rng::SimRng;
use dex_chain::ReplicaConfig;
use dex_consensus::{ConsensusConfig, StepTimeout, ValidatorSet};
use dex_state::{Allocation, Genesis, Limits};
use dex_storage::ChainStoreConfig;
use dex_types::{
    AccountId, Amount, AssetId, AssetSpec, ChainId, Keypair, MarketId, MarketSpec, PriceTicks,
    SizeLots, TimestampMs,
};
use ed25519_dalek::SigningKey;
use rust_decimal::Decimal;

/// The simulated chain's id.
pub const CHAIN: ChainId = ChainId(4_242);
/// Virtual time 0 is this block time.
pub const GENESIS_TIME: TimestampMs = TimestampMs(1_700_000_000_000);
/// Quote asset.
pub const USDC: AssetId = AssetId(0);
/// First base asset.
pub const BTC: AssetId = AssetId(1);
/// Second base asset.
pub const ETH: AssetId = AssetId(2);
/// The two markets traders use.
pub const MARKETS: [MarketId; 2] = [MarketId(0), MarketId(1)];
/// What every trader holds of every asset at genesis.
pub const TRADER_FUNDS: u128 = 1_000_000_000_000_000;

/// Keys and genesis of one run, drawn from the run's random source.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Validator signing keys, in the order validators were drawn (not set order).
    pub validator_keys: Vec<SigningKey>,
    /// The validator set (sorted by key).
    pub validators: ValidatorSet,
    /// Trader keys.
    pub trader_keys: Vec<Keypair>,
    /// The genesis.
    pub genesis: Genesis,
}

impl Fixture {
    /// Draw `validators` validator keys and `traders` trader keys from `rng` and fund the
    /// traders at genesis.
    pub fn new(rng: &mut SimRng, validators: usize, traders: usize) -> Fixture {
        let validator_keys: Vec<SigningKey> = (0..validators)
            .map(|_| SigningKey::from_bytes(&rng.bytes32()))
            .collect();
        let set = ValidatorSet::new(
            validator_keys
                .iter()
                .map(|k| (k.verifying_key().to_bytes(), 1)),
        )
        .expect("bug: random validator keys form a valid set");
        let trader_keys: Vec<Keypair> = (0..traders)
            .map(|_| Keypair::from_seed(rng.bytes32()))
            .collect();
        let mut allocations = Vec::new();
        for key in &trader_keys {
            for asset in [USDC, BTC, ETH] {
                allocations.push(Allocation {
                    account: key.account_id(),
                    asset,
                    amount: Amount(TRADER_FUNDS),
                });
            }
        }
        let genesis = Genesis {
            chain_id: CHAIN,
            genesis_time: GENESIS_TIME,
            assets: vec![
                asset(USDC, "USDC", 6),
                asset(BTC, "BTC", 8),
                asset(ETH, "ETH", 8),
            ],
            markets: vec![
                market(MARKETS[0], BTC, -1, 5),
                market(MARKETS[1], ETH, 0, 10),
            ],
            allocations,
            fee_account: AccountId(rng.bytes32()),
            limits: Limits {
                max_open_orders_per_account: 200,
                max_agents_per_account: 2,
                max_book_orders: 100_000,
                max_order_size_lots: SizeLots(1 << 32),
                max_price_ticks: PriceTicks(1 << 32),
                max_accounts: 10_000,
            },
        };
        Fixture {
            validator_keys,
            validators: set,
            trader_keys,
            genesis,
        }
    }
}

fn asset(id: AssetId, symbol: &str, decimals: u8) -> AssetSpec {
    AssetSpec {
        id,
        symbol: symbol.into(),
        decimals,
    }
}

fn market(id: MarketId, base: AssetId, maker_fee_bps: i32, taker_fee_bps: i32) -> MarketSpec {
    MarketSpec {
        id,
        base,
        quote: USDC,
        tick_size: Decimal::new(1, 2),
        lot_size: Decimal::new(1, 3),
        min_size_lots: SizeLots(1),
        maker_fee_bps,
        taker_fee_bps,
    }
}

/// The consensus timeouts of the simulated chain: short, for a LAN-like network of 5 to
/// 40 ms links, so a run covers many heights.
pub fn consensus_config() -> ConsensusConfig {
    let mut config = ConsensusConfig::new(CHAIN);
    config.propose = StepTimeout {
        base_ms: 400,
        delta_ms: 100,
    };
    config.prevote = StepTimeout {
        base_ms: 200,
        delta_ms: 100,
    };
    config.precommit = StepTimeout {
        base_ms: 200,
        delta_ms: 100,
    };
    config.propose_batch_ms = 20;
    config.rebroadcast_ms = 300;
    config
}

/// The replica configuration of every simulated validator.
pub fn replica_config() -> ReplicaConfig {
    let mut config = ReplicaConfig::new(consensus_config());
    config.block_txs_max = 200;
    config.block_time_ahead_max_ms = 1_000;
    config.mempool = dex_chain::MempoolLimits::with_capacity(5_000);
    config.signature_cache_capacity = 20_000;
    config.sync_retry_ms = 300;
    config
}

/// The store configuration: frequent snapshots, so restarts exercise snapshot + replay.
pub fn store_config() -> ChainStoreConfig {
    ChainStoreConfig {
        snapshot_interval_blocks: 8,
        snapshots_retained: 2,
        verify_recent_blocks: 8,
        ..ChainStoreConfig::default()
    }
}
