//! Micro-benchmarks of the hot-path operations the ledger, mempool and SDK call.
//!
//! Run: `cargo bench -p dex-types --bench types -- --warm-up-time 1 --measurement-time 3`

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use dex_types::*;
use std::str::FromStr;

fn batch_tx(legs: usize) -> SignedTransaction {
    let key = Keypair::from_seed([1; 32]);
    let order = OrderRequest {
        market: MarketId(1),
        client_order_id: Some(ClientOrderId(9)),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price_ticks: PriceTicks(6_500_025),
        size_lots: SizeLots(15_000),
        time_in_force: TimeInForce::Gtc,
        self_trade: SelfTradePrevention::CancelResting,
    };
    key.sign(Transaction {
        chain_id: ChainId(1),
        account: key.account_id(),
        signer: key.account_id(),
        nonce: 1,
        expires_at: TimestampMs(1),
        action: Action::Batch(OrderBatch {
            legs: vec![BatchLeg::Place(order); legs],
            atomic: true,
        }),
    })
    .expect("signer is the key")
}

fn transactions(c: &mut Criterion) {
    for legs in [1usize, 64] {
        let signed = batch_tx(legs);
        let bytes = signed.encode();
        c.bench_with_input(
            BenchmarkId::new("types::tx_hash/legs", legs),
            &signed,
            |b, s| b.iter(|| black_box(s).hash()),
        );
        c.bench_with_input(
            BenchmarkId::new("types::tx_decode/legs", legs),
            &bytes,
            |b, bytes| b.iter(|| SignedTransaction::decode(black_box(bytes)).expect("valid")),
        );
    }
    let signed = batch_tx(1);
    let key = signed.tx.signer.verifying_key().expect("valid key");
    c.bench_function("types::tx_verify/cached_key", |b| {
        b.iter(|| black_box(&signed).verify_with_key(&key).expect("valid"))
    });
    c.bench_function("types::tx_verify/decompress_key", |b| {
        b.iter(|| black_box(&signed).verify().expect("valid"))
    });
}

fn markets(c: &mut Criterion) {
    let usdc = AssetSpec {
        id: AssetId(0),
        symbol: "USDC".into(),
        decimals: 6,
    };
    let btc = AssetSpec {
        id: AssetId(1),
        symbol: "BTC".into(),
        decimals: 8,
    };
    let spec = MarketSpec {
        id: MarketId(1),
        base: AssetId(1),
        quote: AssetId(0),
        tick_size: rust_decimal::Decimal::from_str("0.01").expect("decimal"),
        lot_size: rust_decimal::Decimal::from_str("0.0001").expect("decimal"),
        min_size_lots: SizeLots(1),
        maker_fee_bps: -1,
        taker_fee_bps: 5,
    };
    let market = Market::new(spec, &btc, &usdc).expect("valid market");
    let price = rust_decimal::Decimal::from_str("65000.25").expect("decimal");
    c.bench_function("types::price_to_ticks", |b| {
        b.iter(|| {
            market
                .price_to_ticks(black_box(price))
                .expect("whole ticks")
        })
    });
    c.bench_function("types::ticks_to_price", |b| {
        b.iter(|| {
            market
                .ticks_to_price(black_box(PriceTicks(6_500_025)))
                .expect("decimal")
        })
    });
    c.bench_function("types::notional_and_taker_fee", |b| {
        b.iter(|| {
            let notional = market
                .quote_notional(
                    black_box(PriceTicks(6_500_025)),
                    black_box(SizeLots(15_000)),
                )
                .expect("fits");
            market.taker_fee(notional)
        })
    });
}

fn blocks(c: &mut Criterion) {
    let header = BlockHeader {
        chain_id: ChainId(1),
        height: 1,
        time: TimestampMs(1),
        parent_hash: Hash::ZERO,
        proposer: AccountId([3; 32]),
        txs_root: Hash::ZERO,
        state_root: Hash::ZERO,
        fills_root: Hash::ZERO,
    };
    c.bench_function("types::header_hash", |b| {
        b.iter(|| black_box(&header).hash())
    });
    let leaves: Vec<Hash> = (0u32..1024)
        .map(|i| Hash::of(Domain::FillLeaf, &[&i.to_le_bytes()]))
        .collect();
    c.bench_function("types::merkle_root/leaves=1024", |b| {
        b.iter(|| merkle::root(black_box(&leaves)))
    });
}

criterion_group!(benches, transactions, markets, blocks);
criterion_main!(benches);
