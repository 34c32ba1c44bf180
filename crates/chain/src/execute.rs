//! Building a block as proposer and validating a proposed one: the header rules of the
//! design (parent, strictly later time not too far ahead of the validator's clock, a
//! validator as proposer), signatures, and the validator's own execution giving the
//! header's state and fills roots.
//!
//! Both run the block on a copy of the committed ledger and keep the result as an
//! [`ExecutedBlock`]: the replica executes a proposal once and reuses that result to vote
//! and, if the block is decided, to commit it. The copy is cheap whatever the size of the
//! state: the ledger is copy-on-write (see `dex_state`'s "Copies of the ledger"), so a copy
//! shares every account and tree node the block does not write, and the committed ledger it
//! replaces frees only what the block rewrote. Each transaction is hashed once per check:
//! the ids give the transaction root, the signature cache keys and the canonical order.

use crate::error::InvalidBlock;
use crate::signatures::SignatureCache;
use dex_consensus::ValidatorSet;
use dex_state::{BlockResult, Ledger};
use dex_types::{AccountId, Block, BlockHeader, ChainId, Hash, SignedTransaction, TimestampMs};

/// The committed block a new block must extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    /// Its height (0 for the genesis state).
    pub height: u64,
    /// Its hash ([`Hash::ZERO`] for the genesis state, as the first block names it).
    pub hash: Hash,
    /// Its time (the genesis time for the genesis state).
    pub time: TimestampMs,
}

/// The chain's block rules that are not the ledger's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRules {
    /// The chain id every header carries.
    pub chain_id: ChainId,
    /// Most transactions per block.
    pub txs_max: usize,
    /// How far a block's time may be ahead of the validator's clock. Only the future is
    /// bounded: a re-proposed value (Alg.1 L16) legitimately carries the time of an
    /// earlier round, and the parent's time already bounds the past.
    pub time_ahead_max_ms: u64,
}

/// A block executed on a copy of the committed state: its result and the state after it.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    /// The block.
    pub block: Block,
    /// Its id (the header hash).
    pub id: Hash,
    /// What execution produced (events, outcomes, roots).
    pub result: BlockResult,
    /// The ledger after the block.
    pub ledger: Ledger,
}

/// The time a proposer gives its block: its clock, but always after the parent.
pub fn proposal_time(parent: &Parent, now: TimestampMs) -> TimestampMs {
    let after_parent = parent
        .time
        .0
        .checked_add(1)
        .expect("bug: block time reached u64::MAX");
    TimestampMs(now.0.max(after_parent))
}

/// Build and execute the block that extends `parent` (whose state is `ledger`) with `txs`,
/// proposed by `proposer` at `time`. The transactions' signatures must already be verified
/// (the mempool did).
pub fn build_block(
    ledger: &Ledger,
    parent: &Parent,
    rules: &BlockRules,
    proposer: AccountId,
    time: TimestampMs,
    mut txs: Vec<SignedTransaction>,
) -> ExecutedBlock {
    txs.truncate(rules.txs_max);
    let mut after = ledger.clone();
    let ids: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    let result = after
        .execute_block_with_ids(parent.hash, time, &txs, &ids)
        .expect("bug: a proposer's block time is after its parent's");
    let header = BlockHeader {
        chain_id: rules.chain_id,
        height: parent.height.checked_add(1).expect("bug: height overflow"),
        time,
        parent_hash: parent.hash,
        proposer,
        txs_root: dex_types::merkle::root(&ids),
        state_root: result.state_root,
        fills_root: result.fills_root,
    };
    let block = Block { header, txs };
    ExecutedBlock {
        id: block.hash(),
        block,
        result,
        ledger: after,
    }
}

/// The header rules alone: chain, height, parent, time, proposer, size, transaction root.
/// `now` is `None` for a block that is already certified (its time was judged by the
/// validators that certified it).
pub fn check_header(
    block: &Block,
    parent: &Parent,
    rules: &BlockRules,
    validators: &ValidatorSet,
    now: Option<TimestampMs>,
) -> Result<(), InvalidBlock> {
    check_header_fields(block, parent, rules, validators, now)?;
    check_txs_root(block, &block.tx_hashes())
}

/// Every rule of [`check_header`] but the transaction root: the cheap checks, made before
/// any transaction is hashed.
fn check_header_fields(
    block: &Block,
    parent: &Parent,
    rules: &BlockRules,
    validators: &ValidatorSet,
    now: Option<TimestampMs>,
) -> Result<(), InvalidBlock> {
    let header = &block.header;
    if header.chain_id != rules.chain_id {
        return Err(InvalidBlock::WrongChain {
            expected: rules.chain_id,
            got: header.chain_id,
        });
    }
    let expected = parent.height.checked_add(1).expect("bug: height overflow");
    if header.height != expected {
        return Err(InvalidBlock::WrongHeight {
            expected,
            got: header.height,
        });
    }
    if header.parent_hash != parent.hash {
        return Err(InvalidBlock::WrongParent {
            expected: parent.hash,
            got: header.parent_hash,
        });
    }
    if header.time <= parent.time {
        return Err(InvalidBlock::TimeNotAfterParent {
            time: header.time,
            parent: parent.time,
        });
    }
    if let Some(now) = now
        && header.time.0 > now.0.saturating_add(rules.time_ahead_max_ms)
    {
        return Err(InvalidBlock::TimeTooFarAhead {
            time: header.time,
            now,
            ahead_max_ms: rules.time_ahead_max_ms,
        });
    }
    let is_validator = validators
        .validators()
        .iter()
        .any(|v| v.public_key.as_bytes() == &header.proposer.0);
    if !is_validator {
        return Err(InvalidBlock::UnknownProposer {
            proposer: header.proposer,
        });
    }
    if block.txs.len() > rules.txs_max {
        return Err(InvalidBlock::TooManyTxs {
            count: block.txs.len(),
            max: rules.txs_max,
        });
    }
    block.validate()?;
    Ok(())
}

/// The header's transaction root against the ids of the block's transactions (`ids[i]` is
/// `block.txs[i].hash()`).
fn check_txs_root(block: &Block, ids: &[Hash]) -> Result<(), InvalidBlock> {
    debug_assert_eq!(ids.len(), block.txs.len());
    let header = &block.header;
    let computed = dex_types::merkle::root(ids);
    if computed != header.txs_root {
        return Err(InvalidBlock::TxsRootMismatch {
            header: header.txs_root,
            computed,
        });
    }
    Ok(())
}

/// Check `block` as a child of `parent` (whose state is `ledger`) and execute it: the
/// header rules, every signature, then execution on a copy of the ledger, which must give
/// the header's state and fills roots.
pub fn validate_block(
    block: Block,
    ledger: &Ledger,
    parent: &Parent,
    rules: &BlockRules,
    validators: &ValidatorSet,
    now: Option<TimestampMs>,
    signatures: &mut SignatureCache,
) -> Result<ExecutedBlock, InvalidBlock> {
    // Hashed once: the ids give the transaction root, the signature cache's keys and the
    // canonical order of execution.
    check_header_fields(&block, parent, rules, validators, now)?;
    let ids = block.tx_hashes();
    check_txs_root(&block, &ids)?;
    for (index, (signed, id)) in block.txs.iter().zip(&ids).enumerate() {
        signatures
            .verify(*id, signed)
            .map_err(|_| InvalidBlock::BadSignature { index, tx: *id })?;
    }
    let mut after = ledger.clone();
    let result = after.execute_block_with_ids(
        block.header.parent_hash,
        block.header.time,
        &block.txs,
        &ids,
    )?;
    if result.state_root != block.header.state_root {
        return Err(InvalidBlock::StateRootMismatch {
            header: block.header.state_root,
            computed: result.state_root,
        });
    }
    if result.fills_root != block.header.fills_root {
        return Err(InvalidBlock::FillsRootMismatch {
            header: block.header.fills_root,
            computed: result.fills_root,
        });
    }
    Ok(ExecutedBlock {
        id: block.hash(),
        block,
        result,
        ledger: after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, transfer};
    use dex_types::Domain;

    fn setup() -> (Ledger, Parent, BlockRules, ValidatorSet) {
        let ledger = testkit::ledger();
        let parent = Parent {
            height: 0,
            hash: Hash::ZERO,
            time: ledger.last_block_time(),
        };
        (ledger, parent, testkit::rules(), testkit::validator_set(4))
    }

    fn now(parent: &Parent) -> TimestampMs {
        TimestampMs(parent.time.0 + 100)
    }

    #[test]
    fn a_built_block_validates_to_the_same_state() {
        let (ledger, parent, rules, set) = setup();
        let txs = vec![transfer(1, 1), transfer(2, 1), testkit::order(3, 1)];
        let time = proposal_time(&parent, now(&parent));
        let built = build_block(&ledger, &parent, &rules, testkit::proposer(0), time, txs);
        assert_eq!(built.block.header.height, 1);
        assert_eq!(built.ledger.height(), 1);
        assert_eq!(ledger.height(), 0, "the committed ledger is untouched");
        let mut sigs = SignatureCache::new(16);
        let checked = validate_block(
            built.block.clone(),
            &ledger,
            &parent,
            &rules,
            &set,
            Some(now(&parent)),
            &mut sigs,
        )
        .unwrap();
        assert_eq!(checked.id, built.id);
        assert_eq!(checked.ledger.state_root(), built.ledger.state_root());
        assert_eq!(checked.result, built.result);
    }

    #[test]
    fn proposal_time_is_after_the_parent() {
        let parent = Parent {
            height: 3,
            hash: Hash::ZERO,
            time: TimestampMs(500),
        };
        assert_eq!(proposal_time(&parent, TimestampMs(100)), TimestampMs(501));
        assert_eq!(proposal_time(&parent, TimestampMs(900)), TimestampMs(900));
    }

    /// Every header rule refuses its own kind of broken block, before execution.
    #[test]
    fn each_broken_header_is_refused_with_its_reason() {
        let (ledger, parent, rules, set) = setup();
        let time = proposal_time(&parent, now(&parent));
        let good = build_block(
            &ledger,
            &parent,
            &rules,
            testkit::proposer(1),
            time,
            vec![transfer(1, 1)],
        )
        .block;
        let check = |block: Block| {
            validate_block(
                block,
                &ledger,
                &parent,
                &rules,
                &set,
                Some(now(&parent)),
                &mut SignatureCache::new(4),
            )
            .map(|e| e.id)
        };
        let other = Hash::of(Domain::Other, &[b"other"]);
        let mut b = good.clone();
        b.header.chain_id = ChainId(999);
        assert!(matches!(check(b), Err(InvalidBlock::WrongChain { .. })));
        let mut b = good.clone();
        b.header.height = 2;
        assert!(matches!(check(b), Err(InvalidBlock::WrongHeight { .. })));
        let mut b = good.clone();
        b.header.parent_hash = other;
        assert!(matches!(check(b), Err(InvalidBlock::WrongParent { .. })));
        let mut b = good.clone();
        b.header.time = parent.time;
        assert!(matches!(
            check(b),
            Err(InvalidBlock::TimeNotAfterParent { .. })
        ));
        let mut b = good.clone();
        b.header.time = TimestampMs(now(&parent).0 + rules.time_ahead_max_ms + 1);
        assert!(matches!(
            check(b),
            Err(InvalidBlock::TimeTooFarAhead { .. })
        ));
        let mut b = good.clone();
        b.header.proposer = AccountId([9; 32]);
        assert!(matches!(
            check(b),
            Err(InvalidBlock::UnknownProposer { .. })
        ));
        let mut b = good.clone();
        b.txs.push(transfer(2, 1));
        assert!(matches!(
            check(b),
            Err(InvalidBlock::TxsRootMismatch { .. })
        ));
        let mut b = good.clone();
        b.txs[0].signature[3] ^= 1;
        assert!(matches!(
            check(b),
            Err(InvalidBlock::BadSignature { index: 0, .. })
        ));
        let mut b = good.clone();
        b.header.state_root = other;
        assert!(matches!(
            check(b),
            Err(InvalidBlock::StateRootMismatch { .. })
        ));
        let mut b = good.clone();
        b.header.fills_root = other;
        assert!(matches!(
            check(b),
            Err(InvalidBlock::FillsRootMismatch { .. })
        ));
        assert_eq!(check(good.clone()), Ok(good.hash()));
        // A certified block is not judged by this validator's clock.
        let mut late = good;
        late.header.time = TimestampMs(now(&parent).0 + rules.time_ahead_max_ms + 1);
        assert!(check_header(&late, &parent, &rules, &set, None).is_ok());
    }

    #[test]
    fn a_block_over_the_transaction_limit_is_refused() {
        let (ledger, parent, mut rules, set) = setup();
        let time = proposal_time(&parent, now(&parent));
        let block = build_block(
            &ledger,
            &parent,
            &rules,
            testkit::proposer(0),
            time,
            vec![transfer(1, 1), transfer(2, 1)],
        )
        .block;
        rules.txs_max = 1;
        assert_eq!(
            check_header(&block, &parent, &rules, &set, None),
            Err(InvalidBlock::TooManyTxs { count: 2, max: 1 })
        );
        // A proposer never builds past the limit.
        let built = build_block(
            &ledger,
            &parent,
            &rules,
            testkit::proposer(0),
            time,
            vec![transfer(1, 1), transfer(2, 1)],
        );
        assert_eq!(built.block.txs.len(), 1);
    }
}
