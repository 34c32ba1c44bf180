//! Golden tests: the exact bytes and hashes of every wire type.
//!
//! A failure here means the encoding or a hash changed, which changes every transaction id,
//! block id and signature on chain. If the change is deliberate, update the pinned values
//! (the failure message prints all of them) and say so in the commit.

use dex_types::*;
use std::str::FromStr;

/// Compares every value and reports all differences at once, so a deliberate format change
/// can be reviewed in one run.
#[derive(Default)]
struct Golden {
    mismatches: Vec<String>,
}

impl Golden {
    fn check(&mut self, name: &str, actual: impl AsRef<str>, expected: &str) {
        let actual = actual.as_ref();
        if actual != expected {
            self.mismatches.push(format!(
                "{name}:\n  expected {expected}\n  actual   {actual}"
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.mismatches.is_empty(),
            "golden values changed:\n{}",
            self.mismatches.join("\n")
        );
    }
}

fn alice() -> Keypair {
    Keypair::from_seed([1; 32])
}

fn bob() -> Keypair {
    Keypair::from_seed([2; 32])
}

fn order() -> OrderRequest {
    OrderRequest {
        market: MarketId(1),
        client_order_id: Some(ClientOrderId(9)),
        side: Side::Sell,
        order_type: OrderType::Limit,
        price_ticks: PriceTicks(6_500_025),
        size_lots: SizeLots(15_000),
        time_in_force: TimeInForce::Gtt {
            expires_at: TimestampMs(1_700_000_000_000),
        },
        self_trade: SelfTradePrevention::DecrementAndCancel,
    }
}

fn actions() -> Vec<(&'static str, Action)> {
    vec![
        (
            "batch",
            Action::Batch(OrderBatch {
                legs: vec![
                    BatchLeg::Cancel(CancelTarget::Order(OrderId(5))),
                    BatchLeg::Cancel(CancelTarget::ClientOrder(ClientOrderId(6))),
                    BatchLeg::Cancel(CancelTarget::Market(MarketId(2))),
                    BatchLeg::Cancel(CancelTarget::All),
                    BatchLeg::Place(order()),
                ],
                atomic: true,
            }),
        ),
        (
            "modify",
            Action::Modify(ModifyOrder {
                order_id: OrderId(77),
                price_ticks: Some(PriceTicks(101)),
                size_lots: None,
            }),
        ),
        (
            "schedule_cancel_all",
            Action::ScheduleCancelAll(ScheduleCancelAll {
                at: Some(TimestampMs(1_700_000_060_000)),
            }),
        ),
        (
            "transfer",
            Action::Transfer(Transfer {
                to: bob().account_id(),
                asset: AssetId(0),
                amount: Amount(1_000_000),
            }),
        ),
        (
            "withdraw",
            Action::Withdraw(Withdraw {
                asset: AssetId(1),
                amount: Amount(150_000_000),
                destination: vec![0xde, 0xad, 0xbe, 0xef],
            }),
        ),
        (
            "approve_agent",
            Action::ApproveAgent(ApproveAgent {
                agent: bob().account_id(),
                policy: AgentPolicy {
                    markets: MarketScope::Only(vec![MarketId(1), MarketId(2)]),
                    max_orders_per_block: 50,
                    expires_at: TimestampMs(1_800_000_000_000),
                },
            }),
        ),
        (
            "revoke_agent",
            Action::RevokeAgent(RevokeAgent {
                agent: bob().account_id(),
            }),
        ),
    ]
}

fn tx(action: Action) -> Transaction {
    Transaction {
        chain_id: ChainId(7),
        account: alice().account_id(),
        signer: alice().account_id(),
        nonce: 42,
        expires_at: TimestampMs(1_700_000_030_000),
        action,
    }
}

fn le(value: u64, bytes: usize) -> String {
    hex::encode(&value.to_le_bytes()[..bytes])
}

#[test]
fn order_request_layout_by_hand() {
    // Field by field, in declaration order, little-endian integers.
    let expected = [
        le(1, 4),                 // market: u32
        "01".into(),              // client_order_id: Some
        le(9, 8),                 //   ClientOrderId(9): u64
        "01".into(),              // side: Sell = 1
        "00".into(),              // order_type: Limit = 0
        le(6_500_025, 8),         // price_ticks: u64
        le(15_000, 8),            // size_lots: u64
        "01".into(),              // time_in_force: Gtt = variant 1
        le(1_700_000_000_000, 8), //   expires_at: u64
        "03".into(),              // self_trade: DecrementAndCancel = 3
    ]
    .concat();
    assert_eq!(hex::encode(borsh::to_vec(&order()).unwrap()), expected);
}

#[test]
fn transaction_envelope_layout_by_hand() {
    let unsigned = tx(Action::RevokeAgent(RevokeAgent {
        agent: bob().account_id(),
    }));
    let expected = [
        le(7, 8),                      // chain_id: u64
        alice().account_id().to_hex(), // account: 32 bytes
        alice().account_id().to_hex(), // signer: 32 bytes
        le(42, 8),                     // nonce: u64
        le(1_700_000_030_000, 8),      // expires_at: u64
        "06".into(),                   // action: RevokeAgent = variant 6
        bob().account_id().to_hex(),   //   agent: 32 bytes
    ]
    .concat();
    assert_eq!(hex::encode(unsigned.encode()), expected);
    // The signed form appends the 64 signature bytes, nothing else.
    let signed = alice().sign(unsigned).unwrap();
    assert_eq!(
        hex::encode(signed.encode()),
        format!("{expected}{}", hex::encode(signed.signature))
    );
}

/// Per action kind: its borsh bytes, and the hash of [`tx`] carrying it.
const ACTIONS: [(&str, &str, &str); 7] = [
    (
        "batch",
        "00050000000100050000000000000001010600000000000000010202000000010300010000000109000000000000000100b92e630000000000983a000000000000010068e5cf8b0100000301",
        "4bca17f9c6e4e1a7580e5e68bad20ec18f3fb7f4aa5fc26ea607bb4e1eb16861",
    ),
    (
        "modify",
        "014d0000000000000001650000000000000000",
        "0903ae42330cced47401c6c209f54e3c41d42f9529a602f0cb2049ceb25d03f0",
    ),
    (
        "schedule_cancel_all",
        "02016052e6cf8b010000",
        "26a2b31360b9a1e2b5d607aa1e8c439edbd7e62e005ef366f4582916960bbfee",
    ),
    (
        "transfer",
        "038139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3940000000040420f00000000000000000000000000",
        "870801064f3a4018043b2ead35a59ea3ba3bb16ead54bef479e68bcdfefe787b",
    ),
    (
        "withdraw",
        "040100000080d1f00800000000000000000000000004000000deadbeef",
        "90d21333d73662adc9f4dfa2c7b39c89078c04663c5171c0ca71e029fcac0045",
    ),
    (
        "approve_agent",
        "058139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394010200000001000000020000003200000000505c18a3010000",
        "dd54a34f2b9fe0e700ee8b6a4533a8862411fd14d38f8debc5c5ff8daa05ed96",
    ),
    (
        "revoke_agent",
        "068139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
        "45cac3080fcbd37d1879ebbf7417801f478232ae48e6f8cd86004538798ad115",
    ),
];

#[test]
fn pinned_bytes_and_hashes() {
    let mut golden = Golden::default();
    golden.check(
        "alice",
        alice().account_id().to_hex(),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
    );
    for (name, action) in actions() {
        let (bytes, hash) = ACTIONS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, bytes, hash)| (*bytes, *hash))
            .expect("every action has pinned values");
        golden.check(
            &format!("action {name}"),
            hex::encode(borsh::to_vec(&action).unwrap()),
            bytes,
        );
        let unsigned = tx(action);
        assert_eq!(
            unsigned.validate(),
            Ok(()),
            "{name} must be a valid example"
        );
        golden.check(&format!("tx hash {name}"), unsigned.hash().to_hex(), hash);
    }

    let unsigned = tx(actions().remove(0).1);
    golden.check("transaction", hex::encode(unsigned.encode()), "07000000000000008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c2a0000000000000030dde5cf8b01000000050000000100050000000000000001010600000000000000010202000000010300010000000109000000000000000100b92e630000000000983a000000000000010068e5cf8b0100000301");
    golden.check(
        "transaction hash",
        unsigned.hash().to_hex(),
        "4bca17f9c6e4e1a7580e5e68bad20ec18f3fb7f4aa5fc26ea607bb4e1eb16861",
    );
    golden.check(
        "signing message",
        unsigned.signing_message().to_hex(),
        "b53cc92f664949a7f384477fbe606f56d9c33f478ee1b89af92d2f9da099077b",
    );
    let signed = alice().sign(unsigned).unwrap();
    golden.check("signed transaction", hex::encode(signed.encode()), "07000000000000008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c2a0000000000000030dde5cf8b01000000050000000100050000000000000001010600000000000000010202000000010300010000000109000000000000000100b92e630000000000983a000000000000010068e5cf8b010000030101077841dcb5351a91ecdf304793b6bbccb3169b3619584f2a6c551e37e9f5b2084637384c60ea26dcfb129b64da220194a45af29235a92fe039320ad76d9c03");
    assert_eq!(signed.verify(), Ok(()));

    let header = BlockHeader {
        chain_id: ChainId(7),
        height: 12,
        time: TimestampMs(1_700_000_000_500),
        parent_hash: Hash::of(Domain::Other, &[b"parent"]),
        proposer: bob().account_id(),
        txs_root: merkle::root(&[signed.hash()]),
        state_root: Hash::of(Domain::Other, &[b"state"]),
        fills_root: EMPTY_ROOT,
    };
    golden.check("block header", hex::encode(header.encode()), "07000000000000000c00000000000000f469e5cf8b01000098738a6a6ce870deaa1d437b6ab0c68687a58898495a3d09b50733ab8af087098139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394828907799cc608b45997af11ee9b78fa5801eefac5464232ded06687e796095d8899212fa5cd5fedc5457423faf519862e7ca8334fc7a4de212d4c09f97529ef0000000000000000000000000000000000000000000000000000000000000000");
    golden.check(
        "block header hash",
        header.hash().to_hex(),
        "7a3ee996a8bf28a2c1a2b89b354d035a6fa6341a894d1faa878c79992a2aae7c",
    );
    let block = Block {
        header,
        txs: vec![signed.clone()],
    };
    assert_eq!(block.compute_txs_root(), header.txs_root);
    // A block is its header, a u32 count, then each signed transaction.
    let mut expected = header.encode().to_vec();
    expected.extend_from_slice(&1u32.to_le_bytes());
    expected.extend_from_slice(&signed.encode());
    assert_eq!(block.encode(), expected);

    let market = MarketSpec {
        id: MarketId(1),
        base: AssetId(1),
        quote: AssetId(0),
        tick_size: rust_decimal::Decimal::from_str("0.01").unwrap(),
        lot_size: rust_decimal::Decimal::from_str("0.00010").unwrap(),
        min_size_lots: SizeLots(10),
        maker_fee_bps: -1,
        taker_fee_bps: 5,
    };
    golden.check("market spec", hex::encode(borsh::to_vec(&market).unwrap()), "010000000100000000000000010000000000000000000000000000000201000000000000000000000000000000040a00000000000000ffffffff05000000");
    let asset = AssetSpec {
        id: AssetId(1),
        symbol: "BTC".into(),
        decimals: 8,
    };
    golden.check(
        "asset spec",
        hex::encode(borsh::to_vec(&asset).unwrap()),
        "010000000300000042544308",
    );

    let leaves: Vec<Hash> = (0u8..3)
        .map(|i| Hash::of(Domain::FillLeaf, &[&[i]]))
        .collect();
    golden.check(
        "merkle root of 3",
        merkle::root(&leaves).to_hex(),
        "e5fad82014e14c753e2883d791730d83c7b8f8919073b2fd532ce8c63fabefcc",
    );
    let proof = merkle::prove(&leaves, 2).unwrap();
    golden.check(
        "merkle proof",
        hex::encode(borsh::to_vec(&proof).unwrap()),
        "0100000076efe219b5b08a2d59a1503cca5f10cca52a12e3edee6e89b4c78398ae602a7d",
    );
    golden.check(
        "canonical order key",
        canonical_order_key(&Hash::ZERO, &signed.hash()).to_hex(),
        "665fcfdf7e502ac37fe75c7f1a65dff118a2315921534749f4d3c64b403daffb",
    );
    golden.finish();
}
