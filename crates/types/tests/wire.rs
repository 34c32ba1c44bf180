//! Property tests of the wire formats: round trips, canonical encoding, decoding of hostile
//! bytes, and that no altered bit of a signed transaction survives.

use dex_types::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn account() -> impl Strategy<Value = AccountId> {
    any::<[u8; 32]>().prop_map(AccountId)
}

fn time_in_force() -> impl Strategy<Value = TimeInForce> {
    prop_oneof![
        Just(TimeInForce::Gtc),
        any::<u64>().prop_map(|t| TimeInForce::Gtt {
            expires_at: TimestampMs(t)
        }),
        Just(TimeInForce::Ioc),
        Just(TimeInForce::Fok),
        Just(TimeInForce::PostOnly),
    ]
}

fn order() -> impl Strategy<Value = OrderRequest> {
    (
        any::<u32>(),
        proptest::option::of(any::<u64>()),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        time_in_force(),
        0u8..4,
    )
        .prop_map(
            |(market, client, sell, market_order, price, size, tif, stp)| OrderRequest {
                market: MarketId(market),
                client_order_id: client.map(ClientOrderId),
                side: if sell { Side::Sell } else { Side::Buy },
                order_type: if market_order {
                    OrderType::Market
                } else {
                    OrderType::Limit
                },
                price_ticks: PriceTicks(price),
                size_lots: SizeLots(size),
                time_in_force: tif,
                self_trade: match stp {
                    0 => SelfTradePrevention::CancelResting,
                    1 => SelfTradePrevention::CancelIncoming,
                    2 => SelfTradePrevention::CancelBoth,
                    _ => SelfTradePrevention::DecrementAndCancel,
                },
            },
        )
}

fn leg() -> impl Strategy<Value = BatchLeg> {
    prop_oneof![
        order().prop_map(BatchLeg::Place),
        any::<u64>().prop_map(|id| BatchLeg::Cancel(CancelTarget::Order(OrderId(id)))),
        any::<u64>().prop_map(|id| BatchLeg::Cancel(CancelTarget::ClientOrder(ClientOrderId(id)))),
        any::<u32>().prop_map(|id| BatchLeg::Cancel(CancelTarget::Market(MarketId(id)))),
        Just(BatchLeg::Cancel(CancelTarget::All)),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (vec(leg(), 0..8), any::<bool>())
            .prop_map(|(legs, atomic)| Action::Batch(OrderBatch { legs, atomic })),
        (
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(id, price, size)| Action::Modify(ModifyOrder {
                order_id: OrderId(id),
                price_ticks: price.map(PriceTicks),
                size_lots: size.map(SizeLots),
            })),
        proptest::option::of(any::<u64>()).prop_map(|at| Action::ScheduleCancelAll(
            ScheduleCancelAll {
                at: at.map(TimestampMs)
            }
        )),
        (account(), any::<u32>(), any::<u128>()).prop_map(|(to, asset, amount)| Action::Transfer(
            Transfer {
                to,
                asset: AssetId(asset),
                amount: Amount(amount),
            }
        )),
        (
            any::<u32>(),
            any::<u128>(),
            vec(any::<u8>(), 0..=MAX_WITHDRAW_DESTINATION_BYTES)
        )
            .prop_map(|(asset, amount, destination)| Action::Withdraw(Withdraw {
                asset: AssetId(asset),
                amount: Amount(amount),
                destination,
            })),
        (
            account(),
            proptest::option::of(vec(any::<u32>(), 0..=MAX_AGENT_MARKETS)),
            any::<u32>(),
            any::<u64>()
        )
            .prop_map(|(agent, markets, rate, expires)| Action::ApproveAgent(
                ApproveAgent {
                    agent,
                    policy: AgentPolicy {
                        markets: match markets {
                            None => MarketScope::All,
                            Some(ids) => MarketScope::Only(ids.into_iter().map(MarketId).collect()),
                        },
                        max_orders_per_block: rate,
                        expires_at: TimestampMs(expires),
                    },
                }
            )),
        account().prop_map(|agent| Action::RevokeAgent(RevokeAgent { agent })),
    ]
}

/// A transaction of any shape, valid or not; its signer is a real key, and half the time the
/// account is another (the agent case).
fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<u64>(),
        account(),
        any::<[u8; 32]>(),
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        action(),
    )
        .prop_map(|(chain, account, seed, agent, nonce, expires, action)| {
            let signer = Keypair::from_seed(seed).account_id();
            Transaction {
                chain_id: ChainId(chain),
                account: if agent { account } else { signer },
                signer,
                nonce,
                expires_at: TimestampMs(expires),
                action,
            }
        })
}

/// A transaction that passes `validate`, signed by its signer.
fn valid_signed() -> impl Strategy<Value = SignedTransaction> {
    (any::<[u8; 32]>(), transaction()).prop_filter_map("structurally invalid", |(seed, mut tx)| {
        let key = Keypair::from_seed(seed);
        if tx.signer != tx.account {
            tx.account = key.account_id();
        }
        tx.signer = key.account_id();
        tx.validate().ok()?;
        key.sign(tx).ok()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_agrees_with_validate(tx in transaction(), signature in any::<[u8; 32]>()) {
        let mut full = [0u8; 64];
        full[..32].copy_from_slice(&signature);
        let signed = SignedTransaction { tx, signature: full };
        let bytes = signed.encode();
        match signed.tx.validate() {
            Ok(()) => prop_assert_eq!(SignedTransaction::decode(&bytes), Ok(signed.clone())),
            Err(error) => prop_assert_eq!(SignedTransaction::decode(&bytes), Err(DecodeError::Invalid(error))),
        }
        // JSON round trip too.
        let json = serde_json::to_string(&signed).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignedTransaction>(&json).unwrap(), signed);
    }

    #[test]
    fn valid_transactions_verify(signed in valid_signed()) {
        prop_assert_eq!(signed.verify(), Ok(()));
        let key = signed.tx.signer.verifying_key().unwrap();
        prop_assert_eq!(signed.verify_with_key(&key), Ok(()));
    }

    #[test]
    fn any_flipped_bit_is_caught(signed in valid_signed(), bit in any::<prop::sample::Index>()) {
        let mut bytes = signed.encode();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        if let Ok(altered) = SignedTransaction::decode(&bytes) {
            // Canonical: the altered bytes are the only encoding of what they decode to...
            prop_assert_eq!(altered.encode(), bytes);
            // ...so they are a different transaction or signature, and it does not verify.
            prop_assert_ne!(&altered, &signed);
            prop_assert!(altered.verify().is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        if let Ok(signed) = SignedTransaction::decode(&bytes) {
            prop_assert_eq!(signed.encode(), bytes.clone());
        }
        if let Ok(block) = Block::decode(&bytes) {
            prop_assert_eq!(block.encode(), bytes.clone());
        }
        let _ = BlockHeader::decode(&bytes);
    }

    #[test]
    fn mutated_encodings_decode_canonically(
        signed in valid_signed(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = signed.encode();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = bytes.len() - cut.index(8).min(bytes.len());
        bytes.truncate(keep);
        if let Ok(decoded) = SignedTransaction::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }

    #[test]
    fn blocks_round_trip(txs in vec(valid_signed(), 0..6), height in any::<u64>(), time in any::<u64>()) {
        let chain = txs.first().map_or(ChainId(0), |s| s.tx.chain_id);
        let txs: Vec<SignedTransaction> = txs
            .into_iter()
            .filter(|s| s.tx.chain_id == chain)
            .collect();
        let mut block = Block {
            header: BlockHeader {
                chain_id: chain,
                height,
                time: TimestampMs(time),
                parent_hash: Hash::ZERO,
                proposer: AccountId([3; 32]),
                txs_root: EMPTY_ROOT,
                state_root: Hash::ZERO,
                fills_root: EMPTY_ROOT,
            },
            txs,
        };
        block.header.txs_root = block.compute_txs_root();
        prop_assert_eq!(block.validate(), Ok(()));
        prop_assert_eq!(Block::decode(&block.encode()), Ok(block.clone()));
        prop_assert_eq!(BlockHeader::decode(&block.header.encode()), Ok(block.header));
        let json = serde_json::to_string(&block).unwrap();
        prop_assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), block);
    }
}
