//! The exchange's block as the value consensus decides on.
//!
//! A block's id is its header's hash. The header commits to the transactions through its
//! transaction root, so [`ConsensusValue::is_consistent`] recomputes that root: a block
//! whose transactions were swapped under a signed header is refused on arrival instead of
//! being judged invalid under the real block's id. Whether the block is *valid* (parent,
//! time, execution roots) stays the host's verdict.

use crate::messages::ConsensusValue;
use dex_types::{Block, Hash};

impl ConsensusValue for Block {
    fn id(&self) -> Hash {
        self.hash()
    }

    fn is_consistent(&self) -> bool {
        self.compute_txs_root() == self.header.txs_root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{MessageError, Proposal, ProposalMessage};
    use crate::testkit::{CHAIN, Fixture};
    use crate::types::{Height, Round, ValidatorIndex};
    use dex_types::{
        AccountId, Action, Amount, AssetId, BlockHeader, Domain, EMPTY_ROOT, Keypair,
        SignedTransaction, TimestampMs, Transaction, Transfer,
    };

    fn transfer(nonce: u64) -> SignedTransaction {
        let key = Keypair::from_seed([3; 32]);
        key.sign(Transaction {
            chain_id: CHAIN,
            account: key.account_id(),
            signer: key.account_id(),
            nonce,
            expires_at: TimestampMs(1_000),
            action: Action::Transfer(Transfer {
                to: AccountId([4; 32]),
                asset: AssetId(0),
                amount: Amount(5),
            }),
        })
        .unwrap()
    }

    fn block(txs: Vec<SignedTransaction>) -> Block {
        let mut block = Block {
            header: BlockHeader {
                chain_id: CHAIN,
                height: 1,
                time: TimestampMs(10),
                parent_hash: Hash::ZERO,
                proposer: AccountId([1; 32]),
                txs_root: EMPTY_ROOT,
                state_root: Hash::of(Domain::Other, &[b"state"]),
                fills_root: EMPTY_ROOT,
            },
            txs,
        };
        block.header.txs_root = block.compute_txs_root();
        block
    }

    #[test]
    fn id_is_the_header_hash_and_the_body_must_match_it() {
        let honest = block(vec![transfer(1), transfer(2)]);
        assert_eq!(honest.id(), honest.header.hash());
        assert!(honest.is_consistent());
        assert!(block(Vec::new()).is_consistent());

        // The same header with other transactions: same id, refused as inconsistent.
        let mut swapped = honest.clone();
        swapped.txs = vec![transfer(3)];
        assert_eq!(swapped.id(), honest.id());
        assert!(!swapped.is_consistent());

        // So a proposal carrying it fails verification before anything is keyed by its id.
        let fx = Fixture::equal(4);
        let proposer = fx.proposer(1, 0);
        let signed = Proposal {
            chain_id: CHAIN,
            height: Height(1),
            round: Round(0),
            valid_round: None,
            value_id: honest.id(),
            proposer: ValidatorIndex(proposer),
        }
        .sign(&fx.keys[proposer as usize]);
        let good = ProposalMessage {
            signed,
            value: honest.clone(),
            polka: None,
        };
        assert_eq!(good.verify(&fx.set, CHAIN), Ok(()));
        let bad = ProposalMessage {
            signed,
            value: swapped,
            polka: None,
        };
        assert_eq!(
            bad.verify(&fx.set, CHAIN),
            Err(MessageError::InconsistentValue { id: honest.id() })
        );
    }
}
