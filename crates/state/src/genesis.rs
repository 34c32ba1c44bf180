//! Genesis: the chain's assets, markets, limits, fee account and initial allocations.

use borsh::{BorshDeserialize, BorshSerialize};
use dex_types::{
    AccountId, Amount, AssetId, AssetSpec, AssetSpecError, ChainId, Domain, Hash, Market, MarketId,
    MarketSpec, MarketSpecError, PriceTicks, SizeLots, TimestampMs,
};
use serde::{Deserialize, Serialize};

/// Limits the ledger enforces on every account and market; part of genesis.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most open (resting) orders one account may have across all markets.
    pub max_open_orders_per_account: u32,
    /// Most approved agent keys per account.
    pub max_agents_per_account: u32,
    /// Most resting orders in one market's book.
    pub max_book_orders: u32,
    /// Largest size of one order, in lots.
    pub max_order_size_lots: SizeLots,
    /// Highest price an order may name, in ticks.
    pub max_price_ticks: PriceTicks,
    /// Most accounts the ledger will hold; a transfer that would create one more is rejected.
    pub max_accounts: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_open_orders_per_account: 1_000,
            max_agents_per_account: 16,
            max_book_orders: 1 << 20,
            max_order_size_lots: SizeLots(1 << 40),
            max_price_ticks: PriceTicks(1 << 40),
            max_accounts: 1 << 24,
        }
    }
}

/// Funds an account holds at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// The account.
    pub account: AccountId,
    /// The asset.
    pub asset: AssetId,
    /// How much, in base units.
    pub amount: Amount,
}

/// Everything the chain starts from. Its hash is committed in every state root, so two
/// nodes with different genesis files never agree on a block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain id every transaction must carry.
    pub chain_id: ChainId,
    /// The time of the genesis state; the first block's time may not be earlier.
    pub genesis_time: TimestampMs,
    /// Listed assets, in strictly ascending id order.
    pub assets: Vec<AssetSpec>,
    /// Listed markets, in strictly ascending id order.
    pub markets: Vec<MarketSpec>,
    /// Initial funds; an account gets its index in order of first appearance here.
    pub allocations: Vec<Allocation>,
    /// The account that collects fees and pays rebates (index 0).
    pub fee_account: AccountId,
    /// Limits.
    pub limits: Limits,
}

/// Why a genesis cannot start a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// No assets are listed.
    #[error("genesis lists no assets")]
    NoAssets,
    /// Asset ids are not strictly ascending (or repeat).
    #[error("asset ids must be strictly ascending; {asset} is out of order or repeated")]
    AssetOrder {
        /// The offending id.
        asset: AssetId,
    },
    /// An asset spec is invalid.
    #[error("asset {asset}: {source}")]
    Asset {
        /// The asset.
        asset: AssetId,
        /// What is wrong.
        source: AssetSpecError,
    },
    /// Market ids are not strictly ascending (or repeat).
    #[error("market ids must be strictly ascending; {market} is out of order or repeated")]
    MarketOrder {
        /// The offending id.
        market: MarketId,
    },
    /// A market names an asset genesis does not list.
    #[error("market {market} names asset {asset}, which is not listed")]
    MarketAsset {
        /// The market.
        market: MarketId,
        /// The missing asset.
        asset: AssetId,
    },
    /// A market spec is invalid.
    #[error("market {market}: {source}")]
    Market {
        /// The market.
        market: MarketId,
        /// What is wrong.
        source: MarketSpecError,
    },
    /// The largest possible order of a market would overflow 128-bit amounts.
    #[error(
        "market {market}: an order of the largest size at the highest price overflows 128 bits; lower the limits"
    )]
    MarketLimitsOverflow {
        /// The market.
        market: MarketId,
    },
    /// An allocation names an asset genesis does not list.
    #[error("an allocation names asset {asset}, which is not listed")]
    AllocationAsset {
        /// The asset.
        asset: AssetId,
    },
    /// An allocation of zero.
    #[error("an allocation to {account} of asset {asset} is zero")]
    ZeroAllocation {
        /// The account.
        account: AccountId,
        /// The asset.
        asset: AssetId,
    },
    /// The allocations of one asset sum past 128 bits.
    #[error("allocations of asset {asset} sum past 2^128")]
    SupplyOverflow {
        /// The asset.
        asset: AssetId,
    },
    /// A limit is zero or out of range.
    #[error("limit {name} must be between 1 and {max}")]
    Limit {
        /// Which limit.
        name: &'static str,
        /// Its largest value.
        max: u64,
    },
    /// More accounts at genesis than `max_accounts`.
    #[error("genesis creates more accounts than max_accounts allows")]
    TooManyAccounts,
}

/// A validated genesis with each market's integer factors.
#[derive(Clone, Debug)]
pub(crate) struct ValidGenesis {
    pub hash: Hash,
    pub markets: Vec<Market>,
}

impl Genesis {
    /// The genesis hash: committed in every state root.
    pub fn hash(&self) -> Hash {
        let bytes = borsh::to_vec(self).expect("bug: borsh into a Vec cannot fail");
        Hash::of(Domain::StateLeaf, &[b"genesis", &bytes])
    }

    /// Check every rule, and derive each market's integer factors.
    pub(crate) fn validate(&self) -> Result<ValidGenesis, GenesisError> {
        if self.assets.is_empty() {
            return Err(GenesisError::NoAssets);
        }
        for (i, asset) in self.assets.iter().enumerate() {
            if i > 0 && self.assets[i - 1].id >= asset.id {
                return Err(GenesisError::AssetOrder { asset: asset.id });
            }
            asset.validate().map_err(|source| GenesisError::Asset {
                asset: asset.id,
                source,
            })?;
        }
        let l = &self.limits;
        let limits: [(&'static str, u64, u64); 6] = [
            (
                "max_open_orders_per_account",
                l.max_open_orders_per_account.into(),
                1 << 20,
            ),
            (
                "max_agents_per_account",
                l.max_agents_per_account.into(),
                1 << 10,
            ),
            ("max_book_orders", l.max_book_orders.into(), 1 << 24),
            ("max_order_size_lots", l.max_order_size_lots.0, 1 << 40),
            ("max_price_ticks", l.max_price_ticks.0, u64::MAX),
            ("max_accounts", l.max_accounts.into(), u64::from(u32::MAX)),
        ];
        for (name, value, max) in limits {
            if value == 0 || value > max {
                return Err(GenesisError::Limit { name, max });
            }
        }
        let find_asset = |id: AssetId| self.assets.binary_search_by_key(&id, |a| a.id).ok();
        let mut markets = Vec::with_capacity(self.markets.len());
        for (i, spec) in self.markets.iter().enumerate() {
            if i > 0 && self.markets[i - 1].id >= spec.id {
                return Err(GenesisError::MarketOrder { market: spec.id });
            }
            let asset = |id| {
                find_asset(id)
                    .map(|p| &self.assets[p])
                    .ok_or(GenesisError::MarketAsset {
                        market: spec.id,
                        asset: id,
                    })
            };
            let market = Market::new(spec.clone(), asset(spec.base)?, asset(spec.quote)?).map_err(
                |source| GenesisError::Market {
                    market: spec.id,
                    source,
                },
            )?;
            // The largest order at the highest price, and its fill (fees included), must fit
            // 128 bits, so that no settlement can overflow.
            let fits = market
                .buy_lock(l.max_price_ticks, l.max_order_size_lots)
                .is_ok()
                && market.sell_lock(l.max_order_size_lots).is_ok();
            if !fits {
                return Err(GenesisError::MarketLimitsOverflow { market: spec.id });
            }
            markets.push(market);
        }
        let mut supply = vec![0u128; self.assets.len()];
        let mut accounts = std::collections::BTreeSet::new();
        accounts.insert(self.fee_account);
        for alloc in &self.allocations {
            let pos = find_asset(alloc.asset)
                .ok_or(GenesisError::AllocationAsset { asset: alloc.asset })?;
            if alloc.amount.is_zero() {
                return Err(GenesisError::ZeroAllocation {
                    account: alloc.account,
                    asset: alloc.asset,
                });
            }
            supply[pos] = supply[pos]
                .checked_add(alloc.amount.0)
                .ok_or(GenesisError::SupplyOverflow { asset: alloc.asset })?;
            accounts.insert(alloc.account);
        }
        if accounts.len() as u64 > u64::from(l.max_accounts) {
            return Err(GenesisError::TooManyAccounts);
        }
        Ok(ValidGenesis {
            hash: self.hash(),
            markets,
        })
    }

    /// The total of each asset allocated at genesis, in asset order: what conservation is
    /// checked against.
    pub fn supply(&self) -> Vec<(AssetId, u128)> {
        self.assets
            .iter()
            .map(|a| {
                let total = self
                    .allocations
                    .iter()
                    .filter(|x| x.asset == a.id)
                    .map(|x| x.amount.0)
                    .fold(0u128, |s, x| s.saturating_add(x));
                (a.id, total)
            })
            .collect()
    }
}
