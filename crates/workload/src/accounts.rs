//! Trader keys and the genesis that funds them.

use dex_state::{Allocation, Genesis, Limits};
use dex_types::{
    AccountId, Amount, AssetId, AssetSpec, ChainId, Keypair, MarketId, MarketSpec, SizeLots,
    TimestampMs,
};
use rust_decimal::Decimal;

/// The quote asset of both markets (6 decimals).
pub const USDC: AssetId = AssetId(0);
/// The base asset of [`BTC_USDC`] (8 decimals).
pub const BTC: AssetId = AssetId(1);
/// The base asset of [`ETH_USDC`] (8 decimals).
pub const ETH: AssetId = AssetId(2);
/// Market 0: BTC quoted in USDC.
pub const BTC_USDC: MarketId = MarketId(0);
/// Market 1: ETH quoted in USDC.
pub const ETH_USDC: MarketId = MarketId(1);
/// Where [`two_market_genesis`]'s markets pay their fees: no trader's key, so fees are
/// never mixed into a trader's balances.
pub const FEE_ACCOUNT: AccountId = AccountId([0xFE; 32]);

/// Trader `index`'s key: the seed is `family` repeated, with `index` (little-endian) in its
/// first 8 bytes. Each workload picks its own `family`, so two workloads never share keys,
/// and the same `(family, index)` is the same key on every run.
pub fn trader_key(family: u8, index: u64) -> Keypair {
    let mut seed = [family; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    Keypair::from_seed(seed)
}

/// The keys of traders `0..count` of `family` (see [`trader_key`]).
pub fn trader_keys(family: u8, count: u64) -> Vec<Keypair> {
    (0..count).map(|index| trader_key(family, index)).collect()
}

/// The accounts of `keys`, in order.
pub fn account_ids(keys: &[Keypair]) -> Vec<AccountId> {
    keys.iter().map(Keypair::account_id).collect()
}

/// A genesis with three assets ([`USDC`], [`BTC`], [`ETH`]) and two markets ([`BTC_USDC`],
/// [`ETH_USDC`]: ticks of 0.01, lots of 0.0001, a minimum of one lot, a maker rebate of
/// 1 bp and a taker fee of 4 bp, paid to [`FEE_ACCOUNT`]) that gives every account in
/// `traders` `amount` of each asset. Default limits; a workload that needs others sets
/// [`Genesis::limits`] on the result.
pub fn two_market_genesis(
    chain_id: ChainId,
    genesis_time: TimestampMs,
    traders: &[AccountId],
    amount: Amount,
) -> Genesis {
    let allocations = traders
        .iter()
        .flat_map(|account| {
            [USDC, BTC, ETH].map(|asset| Allocation {
                account: *account,
                asset,
                amount,
            })
        })
        .collect();
    let asset = |id, symbol: &str, decimals| AssetSpec {
        id,
        symbol: symbol.into(),
        decimals,
    };
    let market = |id, base| MarketSpec {
        id,
        base,
        quote: USDC,
        tick_size: Decimal::new(1, 2),
        lot_size: Decimal::new(1, 4),
        min_size_lots: SizeLots(1),
        maker_fee_bps: -1,
        taker_fee_bps: 4,
    };
    Genesis {
        chain_id,
        genesis_time,
        assets: vec![
            asset(USDC, "USDC", 6),
            asset(BTC, "BTC", 8),
            asset(ETH, "ETH", 8),
        ],
        markets: vec![market(BTC_USDC, BTC), market(ETH_USDC, ETH)],
        allocations,
        fee_account: FEE_ACCOUNT,
        limits: Limits::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_state::Ledger;
    use std::collections::BTreeSet;

    #[test]
    fn keys_are_deterministic_and_distinct_per_index_and_family() {
        assert_eq!(trader_key(0x71, 5).seed(), trader_key(0x71, 5).seed());
        let mut seed = [0x71; 32];
        seed[..8].copy_from_slice(&5u64.to_le_bytes());
        assert_eq!(trader_key(0x71, 5).seed(), seed);
        let mut accounts: BTreeSet<AccountId> =
            account_ids(&trader_keys(0x71, 100)).into_iter().collect();
        assert_eq!(accounts.len(), 100);
        accounts.extend(account_ids(&trader_keys(0x3C, 100)));
        assert_eq!(accounts.len(), 200, "families do not share keys");
    }

    #[test]
    fn genesis_funds_every_trader_with_every_asset() {
        let traders = account_ids(&trader_keys(0x71, 50));
        let amount = Amount(1 << 80);
        let genesis = two_market_genesis(ChainId(3), TimestampMs(9), &traders, amount);
        let ledger = Ledger::from_genesis(&genesis).expect("the genesis is valid");
        for trader in &traders {
            for asset in [USDC, BTC, ETH] {
                let balance = ledger.balance(trader, asset);
                assert_eq!((balance.free, balance.locked), (amount.0, 0));
            }
        }
        assert_eq!(ledger.balance(&FEE_ACCOUNT, USDC).free, 0);
        assert_eq!(genesis.markets.len(), 2);
        assert_eq!(genesis.allocations.len(), 3 * traders.len());
    }
}
