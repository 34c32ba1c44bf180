use super::*;
use dex_types::{Action, Amount, AssetId, ChainId, Keypair, TimestampMs, Transaction, Withdraw};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};

/// A signed withdrawal whose encoded size grows with `destination_len` (1 to 64).
fn tx(seed: u8, nonce: u64, destination_len: usize) -> SignedTransaction {
    let key = Keypair::from_seed([seed; 32]);
    key.sign(Transaction {
        chain_id: ChainId(1),
        account: key.account_id(),
        signer: key.account_id(),
        nonce,
        expires_at: TimestampMs(u64::MAX),
        action: Action::Withdraw(Withdraw {
            asset: AssetId(0),
            amount: Amount(1),
            destination: vec![0xab; destination_len],
        }),
    })
    .unwrap()
}

fn txs(count: usize) -> Vec<SignedTransaction> {
    (0..count)
        .map(|i| tx(1 + (i % 7) as u8, i as u64 + 1, 1 + i % 64))
        .collect()
}

/// The bytes of a batch header announcing `count` transactions.
fn header(count: u32) -> Vec<u8> {
    let mut bytes = vec![TX_BATCH_VERSION];
    bytes.extend_from_slice(&count.to_le_bytes());
    bytes
}

// ----- codec -----

#[test]
fn a_batch_round_trips_in_order() {
    for count in [1, 2, 17, TX_BATCH_TXS_MAX] {
        let sent = txs(count);
        let bytes = encode_tx_batch(&sent);
        assert_eq!(decode_tx_batch(&bytes).unwrap(), sent);
    }
}

#[test]
fn the_format_is_borsh_of_a_version_and_a_list_of_transaction_bytes() {
    let sent = txs(3);
    let items: Vec<Vec<u8>> = sent.iter().map(SignedTransaction::encode).collect();
    let borsh = borsh::to_vec(&(TX_BATCH_VERSION, items.clone())).unwrap();
    assert_eq!(encode_tx_batch(&sent), borsh);
    // Pinned layout: version, count, then each length and transaction.
    let bytes = encode_tx_batch(&sent);
    assert_eq!(bytes[..5], [1, 3, 0, 0, 0]);
    let first_len = u32::try_from(items[0].len()).unwrap();
    assert_eq!(bytes[5..9], first_len.to_le_bytes());
    assert_eq!(bytes[9..9 + items[0].len()], items[0][..]);
}

#[test]
fn caps_on_size_count_and_version_are_enforced() {
    assert_eq!(
        decode_tx_batch(&vec![TX_BATCH_VERSION; TX_BATCH_BYTES_MAX + 1]),
        Err(TxBatchError::TooLarge {
            len: TX_BATCH_BYTES_MAX + 1,
            max: TX_BATCH_BYTES_MAX
        })
    );
    assert_eq!(decode_tx_batch(&[]), Err(TxBatchError::Truncated));
    let mut other_version = encode_tx_batch(&txs(1));
    other_version[0] = 2;
    assert_eq!(
        decode_tx_batch(&other_version),
        Err(TxBatchError::UnknownVersion(2))
    );
    assert_eq!(decode_tx_batch(&header(0)), Err(TxBatchError::Empty));
    // One transaction more than the cap, honestly encoded.
    let over = encode_tx_batch(&txs(TX_BATCH_TXS_MAX + 1));
    assert!(over.len() <= TX_BATCH_BYTES_MAX);
    assert_eq!(
        decode_tx_batch(&over),
        Err(TxBatchError::TooManyTxs {
            count: TX_BATCH_TXS_MAX as u64 + 1,
            max: TX_BATCH_TXS_MAX
        })
    );
    let mut trailing = encode_tx_batch(&txs(2));
    trailing.push(0);
    assert_eq!(
        decode_tx_batch(&trailing),
        Err(TxBatchError::TrailingBytes { count: 1 })
    );
}

#[test]
fn adversarial_length_prefixes_are_refused_before_allocating() {
    // A huge count with nothing behind it: refused by the count cap.
    assert_eq!(
        decode_tx_batch(&header(u32::MAX)),
        Err(TxBatchError::TooManyTxs {
            count: u64::from(u32::MAX),
            max: TX_BATCH_TXS_MAX
        })
    );
    // A count within the cap that the bytes cannot hold (each item needs 4 bytes at least).
    let mut short = header(200);
    short.extend_from_slice(&[0; 16]);
    assert_eq!(decode_tx_batch(&short), Err(TxBatchError::Truncated));
    // An item announcing 4 GiB, and one just over the transaction limit.
    for len in [u32::MAX, u32::try_from(MAX_TX_BYTES).unwrap() + 1] {
        let mut huge = header(1);
        huge.extend_from_slice(&len.to_le_bytes());
        huge.extend_from_slice(&[0; 64]);
        assert_eq!(
            decode_tx_batch(&huge),
            Err(TxBatchError::TxTooLarge {
                index: 0,
                len: u64::from(len),
                max: MAX_TX_BYTES
            })
        );
    }
    // An item announcing more bytes than follow.
    let one = txs(1)[0].encode();
    let mut cut = header(1);
    cut.extend_from_slice(&u32::try_from(one.len() + 1).unwrap().to_le_bytes());
    cut.extend_from_slice(&one);
    assert_eq!(decode_tx_batch(&cut), Err(TxBatchError::Truncated));
    // An item one byte short of its transaction: the transaction's own decoder refuses it.
    let mut short_item = header(1);
    short_item.extend_from_slice(&u32::try_from(one.len() - 1).unwrap().to_le_bytes());
    short_item.extend_from_slice(&one[..one.len() - 1]);
    assert!(matches!(
        decode_tx_batch(&short_item),
        Err(TxBatchError::Transaction { index: 0, .. })
    ));
}

#[test]
fn every_strict_prefix_of_a_batch_is_refused() {
    let bytes = encode_tx_batch(&txs(3));
    for len in 0..bytes.len() {
        assert!(decode_tx_batch(&bytes[..len]).is_err(), "prefix of {len}");
    }
}

#[test]
fn an_invalid_transaction_names_its_place() {
    let mut items: Vec<Vec<u8>> = txs(3).iter().map(SignedTransaction::encode).collect();
    // A zero amount is refused by the transaction's structural rules.
    let mut bad = tx(9, 1, 8);
    bad.tx.action = Action::Withdraw(Withdraw {
        asset: AssetId(0),
        amount: Amount(0),
        destination: vec![1],
    });
    items[2] = bad.encode();
    let bytes = borsh::to_vec(&(TX_BATCH_VERSION, items)).unwrap();
    assert!(matches!(
        decode_tx_batch(&bytes),
        Err(TxBatchError::Transaction { index: 2, .. })
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        let _ = decode_tx_batch(&bytes);
    }

    #[test]
    fn a_mutated_batch_decodes_to_valid_transactions_or_is_refused(
        count in 1usize..8,
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut bytes = encode_tx_batch(&txs(count));
        let at = position.index(bytes.len());
        bytes[at] = value;
        if let Ok(decoded) = decode_tx_batch(&bytes) {
            prop_assert!(!decoded.is_empty() && decoded.len() <= TX_BATCH_TXS_MAX);
            // Whatever decodes re-encodes to the same bytes: the format is canonical.
            prop_assert_eq!(encode_tx_batch(&decoded), bytes);
        }
    }
}

// ----- flush policy -----

fn limits(txs_max: usize, bytes_max: usize) -> BatchLimits {
    BatchLimits {
        txs_max,
        bytes_max,
        linger: Duration::from_millis(5),
    }
}

/// The smallest byte limit a batcher accepts: one largest transaction.
const BYTES_MIN: usize = HEADER_BYTES + ITEM_PREFIX_BYTES + MAX_TX_BYTES;

#[test]
fn the_count_cap_sends_a_full_batch_at_once() {
    let t0 = Instant::now();
    let mut batcher = TxBatcher::new(limits(4, TX_BATCH_BYTES_MAX));
    let sent = txs(9);
    let mut ready = Vec::new();
    for tx in &sent[..3] {
        assert!(batcher.push(t0, &tx.encode(), &mut ready));
    }
    assert!(ready.is_empty());
    assert_eq!(batcher.len(), 3);
    assert!(batcher.push(t0, &sent[3].encode(), &mut ready));
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].txs, 4);
    assert_eq!(decode_tx_batch(&ready[0].bytes).unwrap(), sent[..4]);
    assert!(batcher.is_empty());
    assert_eq!(batcher.deadline(), None);
    for tx in &sent[4..] {
        batcher.push(t0, &tx.encode(), &mut ready);
    }
    assert_eq!(ready.len(), 2);
    assert_eq!(decode_tx_batch(&ready[1].bytes).unwrap(), sent[4..8]);
    assert_eq!(batcher.len(), 1);
}

#[test]
fn the_byte_cap_sends_the_batch_a_transaction_does_not_fit_in() {
    let t0 = Instant::now();
    let sent: Vec<SignedTransaction> = (0..200).map(|i| tx(3, i + 1, 64)).collect();
    let item = ITEM_PREFIX_BYTES + sent[0].encode().len();
    let fit = (BYTES_MIN - HEADER_BYTES) / item;
    let mut batcher = TxBatcher::new(limits(TX_BATCH_TXS_MAX, BYTES_MIN));
    let mut ready = Vec::new();
    for tx in &sent[..fit] {
        batcher.push(t0, &tx.encode(), &mut ready);
    }
    assert!(
        ready.is_empty(),
        "{fit} transactions fit in {BYTES_MIN} bytes"
    );
    batcher.push(t0, &sent[fit].encode(), &mut ready);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].txs, fit);
    assert!(ready[0].bytes.len() <= BYTES_MIN);
    assert!(ready[0].bytes.len() + item > BYTES_MIN);
    assert_eq!(decode_tx_batch(&ready[0].bytes).unwrap(), sent[..fit]);
    assert_eq!(
        batcher.len(),
        1,
        "the transaction that did not fit starts the next"
    );
}

#[test]
fn the_linger_sends_a_partial_batch_after_its_first_transaction_waited() {
    let t0 = Instant::now();
    let linger = Duration::from_millis(5);
    let mut batcher = TxBatcher::new(limits(TX_BATCH_TXS_MAX, TX_BATCH_BYTES_MAX));
    assert_eq!(batcher.deadline(), None);
    assert_eq!(batcher.poll(t0 + Duration::from_secs(60)), None);
    let sent = txs(3);
    let mut ready = Vec::new();
    batcher.push(t0, &sent[0].encode(), &mut ready);
    // Later arrivals do not push the deadline back.
    batcher.push(t0 + Duration::from_millis(3), &sent[1].encode(), &mut ready);
    assert_eq!(batcher.deadline(), Some(t0 + linger));
    assert_eq!(batcher.poll(t0 + linger - Duration::from_nanos(1)), None);
    let batch = batcher.poll(t0 + linger).expect("due");
    assert_eq!(decode_tx_batch(&batch.bytes).unwrap(), sent[..2]);
    assert_eq!(batcher.deadline(), None);
    // The next batch's clock starts with its own first transaction.
    let t1 = t0 + Duration::from_millis(40);
    batcher.push(t1, &sent[2].encode(), &mut ready);
    assert_eq!(batcher.deadline(), Some(t1 + linger));
    assert!(ready.is_empty());
    assert_eq!(batcher.flush().map(|b| b.txs), Some(1));
    assert_eq!(batcher.flush(), None);
}

#[test]
fn a_transaction_no_receiver_accepts_is_left_out() {
    let mut batcher = TxBatcher::new(BatchLimits::default());
    let mut ready = Vec::new();
    assert!(!batcher.push(Instant::now(), &vec![0; MAX_TX_BYTES + 1], &mut ready));
    assert!(batcher.is_empty() && ready.is_empty());
}

#[test]
#[should_panic(expected = "bug: a batch's byte limit")]
fn limits_that_cannot_hold_one_transaction_are_a_bug() {
    let _ = TxBatcher::new(limits(8, BYTES_MIN - 1));
}

proptest! {
    /// Whatever arrives, in whatever sizes and at whatever times: every batch is within
    /// both caps and decodes, and the batches in order carry exactly the transactions in
    /// order.
    #[test]
    fn batches_stay_within_caps_and_carry_every_transaction_once(
        arrivals in proptest::collection::vec((1usize..=64, 0u64..4), 1..300),
        txs_max in 1usize..=40,
        extra_bytes in 0usize..20_000,
    ) {
        let bytes_max = BYTES_MIN + extra_bytes;
        let mut batcher = TxBatcher::new(limits(txs_max, bytes_max));
        let t0 = Instant::now();
        let mut now = t0;
        let mut sent = Vec::new();
        let mut ready = Vec::new();
        for (i, (destination_len, gap_ms)) in arrivals.into_iter().enumerate() {
            now += Duration::from_millis(gap_ms);
            ready.extend(batcher.poll(now));
            let signed = tx(5, i as u64 + 1, destination_len);
            prop_assert!(batcher.push(now, &signed.encode(), &mut ready));
            sent.push(signed);
            if let Some(due) = batcher.deadline() {
                prop_assert!(due <= now + Duration::from_millis(5));
            }
        }
        ready.extend(batcher.flush());
        let mut received = Vec::new();
        for batch in &ready {
            prop_assert!(batch.txs >= 1 && batch.txs <= txs_max);
            prop_assert!(batch.bytes.len() <= bytes_max);
            let decoded = decode_tx_batch(&batch.bytes).unwrap();
            prop_assert_eq!(decoded.len(), batch.txs);
            received.extend(decoded);
        }
        prop_assert_eq!(received, sent);
    }
}

// ----- the task, under tokio's paused clock -----

type Published = Arc<Mutex<Vec<(tokio::time::Instant, EncodedBatch)>>>;

fn start_task(limits: BatchLimits) -> (mpsc::Sender<SignedTransaction>, Published) {
    let (sender, receiver) = mpsc::channel(1_024);
    let published: Published = Arc::default();
    let sink = published.clone();
    tokio::spawn(run_tx_gossip(receiver, limits, move |batch| {
        sink.lock()
            .unwrap()
            .push((tokio::time::Instant::now(), batch));
        std::future::ready(())
    }));
    (sender, published)
}

#[tokio::test(start_paused = true)]
async fn the_task_sends_a_partial_batch_after_the_linger_and_a_full_one_at_once() {
    let linger = Duration::from_millis(5);
    let (sender, published) = start_task(BatchLimits {
        txs_max: 8,
        bytes_max: TX_BATCH_BYTES_MAX,
        linger,
    });
    let start = tokio::time::Instant::now();
    let sent = txs(11);
    for tx in &sent[..3] {
        sender.send(tx.clone()).await.unwrap();
    }
    // The clock is paused: it only moves when every task waits, and then straight to the
    // next timer, so these instants are exact.
    tokio::time::sleep(linger - Duration::from_millis(1)).await;
    assert!(
        published.lock().unwrap().is_empty(),
        "no batch before the linger"
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    {
        let published = published.lock().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].0, start + linger);
        assert_eq!(decode_tx_batch(&published[0].1.bytes).unwrap(), sent[..3]);
    }
    // Eight at once fill a batch: it leaves without waiting for the linger.
    let full_at = tokio::time::Instant::now();
    for tx in &sent[3..] {
        sender.send(tx.clone()).await.unwrap();
    }
    while published.lock().unwrap().len() < 2 {
        tokio::task::yield_now().await;
    }
    let published = published.lock().unwrap();
    assert_eq!(published[1].0, full_at, "no time passed");
    assert_eq!(decode_tx_batch(&published[1].1.bytes).unwrap(), sent[3..]);
}

#[tokio::test(start_paused = true)]
async fn the_task_sends_what_is_left_when_its_channel_closes() {
    let (sender, published) = start_task(BatchLimits::default());
    let start = tokio::time::Instant::now();
    let sent = txs(2);
    for tx in &sent {
        sender.send(tx.clone()).await.unwrap();
    }
    drop(sender);
    while published.lock().unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    let published = published.lock().unwrap();
    assert_eq!(published[0].0, start, "sent at close, not after the linger");
    assert_eq!(decode_tx_batch(&published[0].1.bytes).unwrap(), sent);
}
