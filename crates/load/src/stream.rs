//! The seeded order stream, planned and signed before any measurement.
//!
//! Traders act in shuffled rounds: every trader appears once per round of `traders`
//! transactions, in an order the seed shuffles anew each round. A signer's transactions are
//! therefore spread out, which keeps each signer far below the ledger's nonce window and
//! the API's per-account quota, as a population of independent traders would be.
//!
//! Each transaction is one of:
//! - **rest**: a good-til-cancel limit order 1–50 bps away from the market's mid, on the
//!   passive side;
//! - **cross**: a good-til-cancel limit order 0–10 bps through the mid, which trades with
//!   what rests there and rests the remainder;
//! - **ioc**: an immediate-or-cancel taker 20 bps through the mid;
//! - **cancel**: a cancel, by client order id, of one of the trader's earlier good-til-
//!   cancel orders (it may have filled meanwhile: then the ledger rejects the cancel,
//!   which is an ordinary outcome). A trader with nothing to cancel places a resting
//!   order instead.
//!
//! Nonces count up per signer from a base, and a placement's client order id is its
//! nonce, unique among the account's orders by construction. Each market's mid takes a
//! small seeded random walk, bounded to ±5 % of where it started.

use crate::LoadError;
use crate::rng::SplitMix64;
use dex_sdk::TraderKey;
use dex_sdk::wire::SubmitRequest;
use dex_types::{
    Action, BatchLeg, CancelTarget, ChainId, ClientOrderId, Hash, MarketId, OrderBatch,
    OrderRequest, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs, Transaction,
};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::VecDeque;

/// Earlier good-til-cancel orders remembered per trader as cancel targets.
const CANCEL_CANDIDATES_MAX: usize = 32;

/// One market the stream trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketPlan {
    /// The market.
    pub id: MarketId,
    /// Where its mid starts, in ticks.
    pub mid_ticks: u64,
    /// Largest order, in lots (sizes are uniform in `1..=size_lots_max`).
    pub size_lots_max: u64,
}

/// The share of each kind of transaction, in percent (they sum to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// Passive good-til-cancel orders.
    pub rest: u8,
    /// Good-til-cancel orders through the mid.
    pub cross: u8,
    /// Immediate-or-cancel takers.
    pub ioc: u8,
    /// Cancels of earlier orders.
    pub cancel: u8,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            rest: 50,
            cross: 10,
            ioc: 15,
            cancel: 25,
        }
    }
}

impl Mix {
    /// Parse `rest,cross,ioc,cancel` percentages, e.g. `50,10,15,25`.
    pub fn parse(text: &str) -> Result<Mix, LoadError> {
        let parts: Vec<u8> = text
            .split(',')
            .map(|p| p.trim().parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|_| LoadError::Usage(format!("mix {text:?}: four whole percentages")))?;
        let [rest, cross, ioc, cancel] = parts[..] else {
            return Err(LoadError::Usage(format!(
                "mix {text:?}: give rest,cross,ioc,cancel"
            )));
        };
        let mix = Mix {
            rest,
            cross,
            ioc,
            cancel,
        };
        mix.check()?;
        Ok(mix)
    }

    fn check(&self) -> Result<(), LoadError> {
        let sum = u32::from(self.rest)
            + u32::from(self.cross)
            + u32::from(self.ioc)
            + u32::from(self.cancel);
        if sum != 100 {
            return Err(LoadError::Usage(format!(
                "the mix must sum to 100 percent, not {sum}"
            )));
        }
        Ok(())
    }
}

/// What a transaction of the stream does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// A passive good-til-cancel order.
    Rest,
    /// A good-til-cancel order through the mid.
    Cross,
    /// An immediate-or-cancel taker.
    Ioc,
    /// A cancel by client order id.
    Cancel,
}

/// Everything the stream depends on; the same config gives the same stream.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// The seed of every random choice.
    pub seed: u64,
    /// How many traders act (trader indices `0..traders`).
    pub traders: u32,
    /// The chain the transactions are for.
    pub chain_id: ChainId,
    /// The markets traded.
    pub markets: Vec<MarketPlan>,
    /// The shares of each kind of transaction.
    pub mix: Mix,
    /// The expiry of every transaction: after the end of the run.
    pub expires_at: TimestampMs,
    /// Every signer's first nonce is `nonce_base + 1`.
    pub nonce_base: u64,
}

/// One transaction of the stream, before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTx {
    /// The trader (index into the trader keys) that signs it.
    pub trader: u32,
    /// What it does.
    pub kind: TxKind,
    /// The transaction.
    pub tx: Transaction,
}

/// One signed transaction, ready to send.
#[derive(Clone, Debug)]
pub struct PreparedTx {
    /// Its hash, as blocks list it.
    pub hash: Hash,
    /// Its signer.
    pub trader: u32,
    /// What it does.
    pub kind: TxKind,
    /// The JSON body of `POST /v1/txs`.
    pub body: String,
    /// Where in `body` the transaction's hex is (a batch request lists it as is).
    pub hex: std::ops::Range<usize>,
}

impl PreparedTx {
    /// The signed transaction's canonical bytes, hex.
    pub fn tx_hex(&self) -> &str {
        &self.body[self.hex.clone()]
    }
}

#[derive(Clone, Debug)]
struct MarketState {
    plan: MarketPlan,
    mid_ticks: u64,
    mid_low: u64,
    mid_high: u64,
}

/// The stream; see the module docs.
#[derive(Clone, Debug)]
pub struct OrderStream {
    config: StreamConfig,
    rng: SplitMix64,
    markets: Vec<MarketState>,
    next_nonce: Vec<u64>,
    /// Per trader: (market, client order id) of recent good-til-cancel orders.
    open: Vec<VecDeque<ClientOrderId>>,
    round: Vec<u32>,
    round_pos: usize,
    produced: u64,
}

impl OrderStream {
    /// A stream for `config`.
    pub fn new(config: StreamConfig) -> Result<OrderStream, LoadError> {
        config.mix.check()?;
        if config.traders == 0 {
            return Err(LoadError::Usage("at least one trader is needed".into()));
        }
        if config.markets.is_empty() {
            return Err(LoadError::Usage("at least one market is needed".into()));
        }
        let mut markets = Vec::new();
        for plan in &config.markets {
            // At least 40 ticks of room either side, so 1 bp is at least a tick away from
            // the bounds of the walk.
            if plan.mid_ticks < 1_000 || plan.size_lots_max == 0 {
                return Err(LoadError::Usage(format!(
                    "market {}: the mid must be at least 1000 ticks and sizes at least 1 lot",
                    plan.id
                )));
            }
            markets.push(MarketState {
                plan: *plan,
                mid_ticks: plan.mid_ticks,
                mid_low: plan.mid_ticks - plan.mid_ticks / 20,
                mid_high: plan.mid_ticks + plan.mid_ticks / 20,
            });
        }
        let traders = config.traders as usize;
        Ok(OrderStream {
            rng: SplitMix64::new(config.seed ^ 0x6c6f_6164_5f73_7472),
            markets,
            next_nonce: vec![config.nonce_base.saturating_add(1); traders],
            open: vec![VecDeque::new(); traders],
            round: Vec::new(),
            round_pos: 0,
            produced: 0,
            config,
        })
    }

    /// Transactions produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The next nonce each trader would use.
    pub fn next_nonces(&self) -> &[u64] {
        &self.next_nonce
    }

    fn next_trader(&mut self) -> u32 {
        if self.round_pos == self.round.len() {
            // A fresh Fisher–Yates shuffle per round.
            self.round = (0..self.config.traders).collect();
            for i in (1..self.round.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                self.round.swap(i, j);
            }
            self.round_pos = 0;
        }
        let trader = self.round[self.round_pos];
        self.round_pos += 1;
        trader
    }

    fn bps_ticks(mid: u64, bps: u64) -> u64 {
        (mid.saturating_mul(bps) / 10_000).max(1)
    }

    /// The next transaction.
    pub fn next_tx(&mut self) -> PlannedTx {
        let trader = self.next_trader();
        let m = self.rng.below(self.markets.len() as u64) as usize;
        if self.rng.below(32) == 0 {
            let market = &mut self.markets[m];
            let step = (market.plan.mid_ticks / 20_000).max(1);
            market.mid_ticks = if self.rng.below(2) == 0 {
                market.mid_ticks.saturating_sub(step).max(market.mid_low)
            } else {
                market.mid_ticks.saturating_add(step).min(market.mid_high)
            };
        }
        let roll = self.rng.below(100);
        let mix = self.config.mix;
        let (rest, cross, ioc) = (
            u64::from(mix.rest),
            u64::from(mix.cross),
            u64::from(mix.ioc),
        );
        let mut kind = if roll < rest {
            TxKind::Rest
        } else if roll < rest + cross {
            TxKind::Cross
        } else if roll < rest + cross + ioc {
            TxKind::Ioc
        } else {
            TxKind::Cancel
        };
        let t = trader as usize;
        if kind == TxKind::Cancel && self.open[t].is_empty() {
            kind = TxKind::Rest;
        }
        let nonce = self.next_nonce[t];
        self.next_nonce[t] = nonce
            .checked_add(1)
            .expect("bug: a trader's nonces ran past u64::MAX");
        let leg = if kind == TxKind::Cancel {
            let pick = self.rng.below(self.open[t].len() as u64) as usize;
            let cid = self.open[t]
                .remove(pick)
                .expect("bug: the pick is inside the list");
            BatchLeg::Cancel(CancelTarget::ClientOrder(cid))
        } else {
            let market = &self.markets[m];
            let mid = market.mid_ticks;
            let side = if self.rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let (toward, time_in_force) = match kind {
                TxKind::Rest => (false, TimeInForce::Gtc),
                TxKind::Cross => (true, TimeInForce::Gtc),
                _ => (true, TimeInForce::Ioc),
            };
            let offset = match kind {
                TxKind::Rest => Self::bps_ticks(mid, self.rng.range(1, 50)),
                TxKind::Cross => {
                    let bps = self.rng.range(0, 10);
                    if bps == 0 {
                        0
                    } else {
                        Self::bps_ticks(mid, bps)
                    }
                }
                _ => Self::bps_ticks(mid, 20),
            };
            // Buying through the mid means a higher price; resting passively, a lower one.
            let up = (side == Side::Buy) == toward;
            let price = if up { mid + offset } else { mid - offset };
            let size = self.rng.range(1, market.plan.size_lots_max);
            let cid = ClientOrderId(nonce);
            if time_in_force == TimeInForce::Gtc {
                let open = &mut self.open[t];
                if open.len() == CANCEL_CANDIDATES_MAX {
                    open.pop_front();
                }
                open.push_back(cid);
            }
            BatchLeg::Place(OrderRequest {
                market: market.plan.id,
                client_order_id: Some(cid),
                side,
                order_type: OrderType::Limit,
                price_ticks: PriceTicks(price),
                size_lots: SizeLots(size),
                time_in_force,
                self_trade: SelfTradePrevention::CancelResting,
            })
        };
        self.produced += 1;
        PlannedTx {
            trader,
            kind,
            tx: Transaction {
                chain_id: self.config.chain_id,
                // Placeholder: the signer's key fills in its account in `sign_all`.
                account: dex_types::AccountId([0; 32]),
                signer: dex_types::AccountId([0; 32]),
                nonce,
                expires_at: self.config.expires_at,
                action: Action::Batch(OrderBatch {
                    legs: vec![leg],
                    atomic: true,
                }),
            },
        }
    }

    /// The next `count` transactions.
    pub fn take(&mut self, count: usize) -> Vec<PlannedTx> {
        (0..count).map(|_| self.next_tx()).collect()
    }
}

/// Sign every planned transaction with its trader's key (on all cores) and encode the
/// request body.
pub fn sign_all(planned: Vec<PlannedTx>, keys: &[TraderKey]) -> Result<Vec<PreparedTx>, LoadError> {
    planned
        .into_par_iter()
        .map(|mut p| {
            let key = keys
                .get(p.trader as usize)
                .ok_or_else(|| LoadError::Usage(format!("no key for trader {}", p.trader)))?;
            p.tx.account = key.account();
            p.tx.signer = key.signer();
            let signed = key
                .sign(p.tx)
                .map_err(|e| LoadError::Usage(format!("signing: {e}")))?;
            let tx_hex = hex::encode(signed.encode());
            let body = serde_json::to_string(&SubmitRequest {
                tx: tx_hex.clone(),
                wait_for_commit: false,
                wait_timeout_ms: None,
            })
            .expect("bug: a submit request serialises");
            // Hex needs no escaping, so the body holds it verbatim.
            let start = body
                .find(tx_hex.as_str())
                .expect("bug: the body carries the transaction's hex");
            Ok(PreparedTx {
                hash: signed.hash(),
                trader: p.trader,
                kind: p.kind,
                hex: start..start + tx_hex.len(),
                body,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn config(seed: u64, traders: u32) -> StreamConfig {
        StreamConfig {
            seed,
            traders,
            chain_id: ChainId(7),
            markets: vec![
                MarketPlan {
                    id: MarketId(1),
                    mid_ticks: 6_000_000,
                    size_lots_max: 50,
                },
                MarketPlan {
                    id: MarketId(2),
                    mid_ticks: 300_000,
                    size_lots_max: 500,
                },
            ],
            mix: Mix::default(),
            expires_at: TimestampMs(1_000),
            nonce_base: 100,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
        let a = OrderStream::new(config(1, 20)).unwrap().take(2_000);
        let b = OrderStream::new(config(1, 20)).unwrap().take(2_000);
        let c = OrderStream::new(config(2, 20)).unwrap().take(2_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Taking in pieces gives the same stream as taking at once.
        let mut s = OrderStream::new(config(1, 20)).unwrap();
        let mut pieces = s.take(700);
        pieces.extend(s.take(1_300));
        assert_eq!(pieces, a);
    }

    #[test]
    fn nonces_count_up_per_trader_and_rounds_spread_each_trader() {
        let traders = 13;
        let txs = OrderStream::new(config(5, traders)).unwrap().take(13 * 40);
        let mut per_trader: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for tx in &txs {
            per_trader.entry(tx.trader).or_default().push(tx.tx.nonce);
        }
        assert_eq!(per_trader.len(), traders as usize);
        for nonces in per_trader.values() {
            let expected: Vec<u64> = (101..101 + nonces.len() as u64).collect();
            assert_eq!(nonces, &expected, "consecutive nonces from the base");
        }
        // Each round of `traders` transactions has each trader exactly once.
        for round in txs.chunks(traders as usize) {
            let set: BTreeSet<u32> = round.iter().map(|t| t.trader).collect();
            assert_eq!(set.len(), traders as usize);
        }
    }

    #[test]
    fn orders_sit_near_the_mid_and_cancels_name_earlier_orders_of_the_trader() {
        let txs = OrderStream::new(config(9, 10)).unwrap().take(5_000);
        let mut placed: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
        let mut kinds: BTreeMap<TxKind, usize> = BTreeMap::new();
        for p in &txs {
            *kinds.entry(p.kind).or_default() += 1;
            let Action::Batch(batch) = &p.tx.action else {
                panic!("every transaction is a batch")
            };
            assert_eq!(batch.legs.len(), 1);
            match batch.legs[0] {
                BatchLeg::Place(order) => {
                    let mid = if order.market == MarketId(1) {
                        6_000_000
                    } else {
                        300_000
                    };
                    // Within 5 % walk plus 50 bps.
                    let band = mid / 20 + mid / 200 + 1;
                    assert!(order.price_ticks.0.abs_diff(mid) <= band);
                    assert_eq!(order.client_order_id, Some(ClientOrderId(p.tx.nonce)));
                    match p.kind {
                        TxKind::Ioc => assert_eq!(order.time_in_force, TimeInForce::Ioc),
                        TxKind::Rest | TxKind::Cross => {
                            assert_eq!(order.time_in_force, TimeInForce::Gtc);
                            placed.entry(p.trader).or_default().insert(p.tx.nonce);
                        }
                        TxKind::Cancel => panic!("a cancel places nothing"),
                    }
                }
                BatchLeg::Cancel(CancelTarget::ClientOrder(cid)) => {
                    assert_eq!(p.kind, TxKind::Cancel);
                    assert!(
                        placed.get_mut(&p.trader).is_some_and(|s| s.remove(&cid.0)),
                        "a cancel names an earlier, not yet cancelled order of its trader"
                    );
                }
                other => panic!("unexpected leg {other:?}"),
            }
        }
        // Every kind appears in roughly its share.
        for (kind, share) in [
            (TxKind::Rest, 50),
            (TxKind::Cross, 10),
            (TxKind::Ioc, 15),
            (TxKind::Cancel, 25),
        ] {
            let got = kinds.get(&kind).copied().unwrap_or(0) * 100 / txs.len();
            assert!(got.abs_diff(share) <= 6, "{kind:?}: {got}% for {share}%");
        }
    }

    #[test]
    fn signing_fills_in_the_trader_and_hashes_the_signed_bytes() {
        let keys = crate::keys::trader_keys(3, 4);
        let planned = OrderStream::new(config(3, 4)).unwrap().take(40);
        let signed = sign_all(planned.clone(), &keys).unwrap();
        assert_eq!(signed.len(), 40);
        for (p, s) in planned.iter().zip(&signed) {
            assert_eq!(p.trader, s.trader);
            let request: SubmitRequest = serde_json::from_str(&s.body).unwrap();
            let tx =
                dex_types::SignedTransaction::decode(&hex::decode(&request.tx).unwrap()).unwrap();
            assert_eq!(tx.hash(), s.hash);
            assert_eq!(tx.tx.signer, keys[p.trader as usize].signer());
            assert!(tx.verify().is_ok());
            assert!(!request.wait_for_commit);
            assert_eq!(s.tx_hex(), request.tx);
        }
        assert!(
            sign_all(planned, &keys[..1]).is_err(),
            "a missing key is an error"
        );
    }

    #[test]
    fn a_bad_mix_is_refused() {
        assert_eq!(Mix::parse("50,10,15,25").unwrap(), Mix::default());
        assert!(Mix::parse("50,10,15").is_err());
        assert!(Mix::parse("50,10,15,26").is_err());
        assert!(Mix::parse("a,b,c,d").is_err());
    }
}
