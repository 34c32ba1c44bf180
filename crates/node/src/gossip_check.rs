//! The signature check of gossiped transaction batches, several messages at a time.
//!
//! Peers publish their admitted client transactions in batches every few milliseconds, so
//! at a moderate rate each message carries only a handful of transactions. Checked one
//! message at a time, such a handful gets little from batch verification (and costs two
//! thread hand-offs); checked together with the other messages that queued meanwhile, the
//! signatures form one large batch. The stage takes whatever has queued when it is free, so
//! a lone message is checked at once and a busy node's rounds grow by themselves.
//!
//! Verdicts stay per message: a message with an undecodable transaction or a bad signature
//! is refused whole (and its sender penalised), its neighbours in the round are not.

use crate::driver::{Shared, Submission};
use crate::gossip;
use crate::metrics::RejectReason;
use dex_p2p::{GossipMessage, P2pHandle, ValidationTicket, Verdict};
use dex_types::SignedTransaction;
use dex_verify::TxVerifier;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// Most messages checked in one round: with full batches about 4,000 signatures, a few
/// tens of milliseconds on two cores, so the round's first message waits no longer.
const ROUND_MESSAGES_MAX: usize = 16;

/// Where the network task hands gossiped transaction batches for checking.
#[derive(Clone, Debug)]
pub(crate) struct BatchCheck {
    queue: mpsc::Sender<GossipMessage>,
}

/// What the stage needs besides the messages.
pub(crate) struct BatchCheckParts {
    pub p2p: P2pHandle,
    pub shared: Arc<Shared>,
    pub submissions: crossbeam_channel::Sender<Submission>,
    pub verifier: TxVerifier,
}

impl BatchCheck {
    /// Start the stage on the current runtime; at most `capacity` messages wait.
    pub fn start(parts: BatchCheckParts, capacity: usize) -> BatchCheck {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(parts, receiver));
        BatchCheck { queue }
    }

    /// Queue `message`; if the queue is full (or the stage stopped) its ticket comes back,
    /// for the caller's verdict.
    pub fn offer(&self, message: GossipMessage) -> Result<(), ValidationTicket> {
        self.queue.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m.ticket(),
        })
    }
}

/// One message's result.
enum Checked {
    /// Every transaction decoded and its signature holds.
    Good(Vec<SignedTransaction>),
    /// This many signatures do not hold.
    Forged(usize),
    /// The message is not a transaction batch.
    Undecodable(gossip::TxBatchError),
}

async fn run(parts: BatchCheckParts, mut receiver: mpsc::Receiver<GossipMessage>) {
    let mut round = Vec::with_capacity(ROUND_MESSAGES_MAX);
    while receiver.recv_many(&mut round, ROUND_MESSAGES_MAX).await > 0 {
        let messages = std::mem::take(&mut round);
        let verifier = parts.verifier.clone();
        let checked = tokio::task::spawn_blocking(move || check_round(&verifier, messages)).await;
        // A panic in the pool or a stopping runtime: no judgement on these messages.
        let Ok(checked) = checked else {
            return;
        };
        for (ticket, checked) in checked {
            let verdict = settle(&parts, checked);
            let _ = parts.p2p.report_validation(ticket, verdict).await;
        }
    }
}

/// Decode every message and check all their signatures as one batch.
fn check_round(
    verifier: &TxVerifier,
    messages: Vec<GossipMessage>,
) -> Vec<(ValidationTicket, Checked)> {
    let mut all: Vec<SignedTransaction> = Vec::new();
    // Per message: its ticket and where its transactions sit in `all` (or why none do).
    let mut spans = Vec::with_capacity(messages.len());
    for message in messages {
        let ticket = message.ticket();
        match gossip::decode_tx_batch(&message.data) {
            Ok(txs) => {
                let start = all.len();
                all.extend(txs);
                spans.push((ticket, Ok(start..all.len())));
            }
            Err(error) => spans.push((ticket, Err(error))),
        }
    }
    let results = verifier.verify_batch(&all);
    let mut all = all.into_iter();
    spans
        .into_iter()
        .map(|(ticket, span)| {
            let checked = match span {
                Ok(range) => {
                    let forged = results[range.clone()].iter().filter(|r| r.is_err()).count();
                    let txs: Vec<SignedTransaction> = all.by_ref().take(range.len()).collect();
                    if forged == 0 {
                        Checked::Good(txs)
                    } else {
                        Checked::Forged(forged)
                    }
                }
                Err(error) => Checked::Undecodable(error),
            };
            (ticket, checked)
        })
        .collect()
}

/// Count the message, hand good transactions to the driver, and give the verdict.
fn settle(parts: &BatchCheckParts, checked: Checked) -> Verdict {
    let metrics = &parts.shared.metrics;
    match checked {
        Checked::Good(txs) => {
            let count = txs.len();
            metrics
                .gossip_batches_received
                .fetch_add(1, Ordering::Relaxed);
            metrics
                .gossip_txs_received
                .fetch_add(count as u64, Ordering::Relaxed);
            if !parts.shared.reserve_gossip(count) {
                metrics.reject(RejectReason::Overloaded);
            } else if parts.submissions.try_send(Submission::Gossip(txs)).is_err() {
                parts.shared.release_gossip(count);
                metrics.reject(RejectReason::Overloaded);
            }
            // Valid whether or not this node had room for it: the peers get it.
            Verdict::Accept
        }
        Checked::Forged(forged) => {
            tracing::debug!(forged, "a transaction batch with bad signatures");
            metrics.reject(RejectReason::BadSignature);
            Verdict::Reject
        }
        Checked::Undecodable(error) => {
            tracing::debug!(%error, "an undecodable transaction batch");
            metrics.reject(RejectReason::Undecodable);
            Verdict::Reject
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::transfer;
    use dex_p2p::{GossipId, PeerId, Topic};

    fn message(data: Vec<u8>) -> GossipMessage {
        GossipMessage {
            id: GossipId::of(&data),
            topic: Topic::Transactions,
            source: PeerId::random(),
            data,
        }
    }

    #[test]
    fn a_round_judges_each_message_on_its_own_transactions() {
        let verifier = TxVerifier::new(2, 64);
        let good: Vec<SignedTransaction> = (1..=5).map(|n| transfer(1, n)).collect();
        let mut forged: Vec<SignedTransaction> = (1..=4).map(|n| transfer(2, n)).collect();
        forged[2].signature[7] ^= 1;
        let later: Vec<SignedTransaction> = (1..=3).map(|n| transfer(3, n)).collect();
        let messages = vec![
            message(gossip::encode_tx_batch(&good)),
            message(gossip::encode_tx_batch(&forged)),
            message(vec![0xff; 40]),
            message(gossip::encode_tx_batch(&later)),
        ];
        let tickets: Vec<GossipId> = messages.iter().map(|m| m.id).collect();
        let checked = check_round(&verifier, messages);
        assert_eq!(
            checked.iter().map(|(t, _)| t.id).collect::<Vec<_>>(),
            tickets,
            "one answer per message, in order"
        );
        assert!(matches!(&checked[0].1, Checked::Good(txs) if *txs == good));
        assert!(matches!(checked[1].1, Checked::Forged(1)));
        assert!(matches!(checked[2].1, Checked::Undecodable(_)));
        // The message after a bad and an undecodable one keeps exactly its own transactions.
        assert!(matches!(&checked[3].1, Checked::Good(txs) if *txs == later));
    }
}
