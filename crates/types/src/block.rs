//! Blocks: the header that consensus votes on, the transactions, and their bounded decoding.

use crate::codec::{self, read_bounded_vec};
use crate::error::{DecodeError, ValidationError};
use crate::hash::{Domain, Hash};
use crate::ids::{AccountId, ChainId};
use crate::merkle;
use crate::tx::SignedTransaction;
use crate::units::TimestampMs;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 8_192;

/// The largest encoded block, in bytes, checked before decoding.
pub const MAX_BLOCK_BYTES: usize = 4 * 1024 * 1024;

/// A block header. Its hash is the block's id, and the roots in it are what validators
/// compare before they vote: a validator prevotes only if its own execution of the block
/// gives the same roots.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: ChainId,
    /// Height: the genesis block's child is height 1.
    pub height: u64,
    /// The block time, chosen by the proposer; the only clock the state machine sees.
    pub time: TimestampMs,
    /// The parent block's hash ([`Hash::ZERO`] for the first block).
    pub parent_hash: Hash,
    /// The validator that proposed the block.
    pub proposer: AccountId,
    /// [`merkle::root`] of the transaction ids, in the order the block lists them.
    pub txs_root: Hash,
    /// The root of the state after executing the block.
    pub state_root: Hash,
    /// [`merkle::root`] of the fills (and other receipts) the block produced.
    pub fills_root: Hash,
}

impl BlockHeader {
    /// Length of the borsh encoding: 3 × 8 bytes of integers, 5 × 32 bytes of hashes and keys.
    pub const ENCODED_LEN: usize = 3 * 8 + 5 * 32;

    /// The canonical borsh bytes (fixed length).
    pub fn encode(&self) -> [u8; BlockHeader::ENCODED_LEN] {
        let mut out = [0u8; BlockHeader::ENCODED_LEN];
        let mut writer = &mut out[..];
        borsh::to_writer(&mut writer, self).expect("bug: header longer than ENCODED_LEN");
        assert!(writer.is_empty(), "bug: header shorter than ENCODED_LEN");
        out
    }

    /// Decode exactly [`BlockHeader::ENCODED_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<BlockHeader, DecodeError> {
        codec::decode_bounded(bytes, BlockHeader::ENCODED_LEN)
    }

    /// The block id: BLAKE3 under [`Domain::BlockHeader`] of the header's bytes.
    pub fn hash(&self) -> Hash {
        Hash::of(Domain::BlockHeader, &[&self.encode()])
    }
}

/// A header and the transactions it commits to.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in the order the proposer listed them (execution order is the
    /// canonical order, not this one); at most [`MAX_BLOCK_TXS`].
    #[borsh(deserialize_with = "read_txs")]
    pub txs: Vec<SignedTransaction>,
}

fn read_txs<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Vec<SignedTransaction>> {
    read_bounded_vec(reader, MAX_BLOCK_TXS, |count| ValidationError::TooManyTxs {
        count,
        max: MAX_BLOCK_TXS,
    })
}

impl Block {
    /// Decode bytes from a peer: length cap, canonical borsh, no trailing bytes, then
    /// [`Block::validate`]. Signatures and roots are not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Block, DecodeError> {
        let block: Block = codec::decode_bounded(bytes, MAX_BLOCK_BYTES)?;
        block.validate_structure()?;
        Ok(block)
    }

    /// The canonical borsh bytes.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("bug: borsh writing to a Vec failed")
    }

    /// The block id (the header's hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The ids of the transactions, in block order.
    pub fn tx_hashes(&self) -> Vec<Hash> {
        self.txs.iter().map(SignedTransaction::hash).collect()
    }

    /// The Merkle root of the transaction ids: what `header.txs_root` must be.
    pub fn compute_txs_root(&self) -> Hash {
        merkle::root(&self.tx_hashes())
    }

    /// Check every structural rule that needs no chain state: the transaction count and
    /// encoded size, each transaction's own rules, and that each is for this chain.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_structure()?;
        let len = borsh::object_length(self).expect("bug: borsh length of a block failed");
        if len > MAX_BLOCK_BYTES {
            return Err(ValidationError::BlockTooLarge {
                len,
                max: MAX_BLOCK_BYTES,
            });
        }
        Ok(())
    }

    /// The rules of [`Block::validate`] except the encoded size, which a decoded block has
    /// already met.
    fn validate_structure(&self) -> Result<(), ValidationError> {
        if self.txs.len() > MAX_BLOCK_TXS {
            return Err(ValidationError::TooManyTxs {
                count: self.txs.len(),
                max: MAX_BLOCK_TXS,
            });
        }
        for (index, signed) in self.txs.iter().enumerate() {
            if signed.tx.chain_id != self.header.chain_id {
                return Err(ValidationError::WrongChain {
                    index,
                    expected: self.header.chain_id,
                    got: signed.tx.chain_id,
                });
            }
            signed
                .tx
                .validate()
                .map_err(|error| ValidationError::InvalidBlockTx {
                    index,
                    error: Box::new(error),
                })?;
        }
        Ok(())
    }
}

/// The key that orders transactions inside one execution class of a block:
/// `Hash::of(CanonicalOrder, [parent_hash, tx_hash])`, ascending. The proposer cannot
/// predict it for a block whose parent is not yet decided, so it cannot place its own
/// transactions first.
pub fn canonical_order_key(parent_hash: &Hash, tx_hash: &Hash) -> Hash {
    Hash::of(
        Domain::CanonicalOrder,
        &[parent_hash.as_bytes(), tx_hash.as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientOrderId, MarketId};
    use crate::sign::Keypair;
    use crate::tx::{
        Action, BatchLeg, CancelTarget, MAX_BATCH_LEGS, OrderBatch, OrderRequest, Transaction,
    };
    use crate::units::{OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce};

    fn header() -> BlockHeader {
        BlockHeader {
            chain_id: ChainId(1),
            height: 2,
            time: TimestampMs(3),
            parent_hash: Hash::of(Domain::Other, &[b"parent"]),
            proposer: Keypair::from_seed([9; 32]).account_id(),
            txs_root: merkle::EMPTY_ROOT,
            state_root: Hash::of(Domain::Other, &[b"state"]),
            fills_root: merkle::EMPTY_ROOT,
        }
    }

    fn signed_batch(nonce: u64, chain: u64, legs: Vec<BatchLeg>) -> SignedTransaction {
        let key = Keypair::from_seed([1; 32]);
        key.sign(Transaction {
            chain_id: ChainId(chain),
            account: key.account_id(),
            signer: key.account_id(),
            nonce,
            expires_at: TimestampMs(10),
            action: Action::Batch(OrderBatch {
                legs,
                atomic: false,
            }),
        })
        .unwrap()
    }

    fn signed(nonce: u64, chain: u64, legs: usize) -> SignedTransaction {
        signed_batch(
            nonce,
            chain,
            vec![BatchLeg::Cancel(CancelTarget::All); legs],
        )
    }

    #[test]
    fn header_encoding_is_fixed_length_and_round_trips() {
        let h = header();
        assert_eq!(borsh::to_vec(&h).unwrap().len(), BlockHeader::ENCODED_LEN);
        assert_eq!(BlockHeader::decode(&h.encode()), Ok(h));
        assert!(matches!(
            BlockHeader::decode(&h.encode()[..BlockHeader::ENCODED_LEN - 1]),
            Err(DecodeError::Malformed { .. })
        ));
        let mut other = h;
        other.height += 1;
        assert_ne!(other.hash(), h.hash());
    }

    #[test]
    fn block_round_trips_and_roots() {
        let mut block = Block {
            header: header(),
            txs: vec![signed(1, 1, 1), signed(2, 1, 3)],
        };
        block.header.txs_root = block.compute_txs_root();
        assert_eq!(block.validate(), Ok(()));
        assert_eq!(Block::decode(&block.encode()), Ok(block.clone()));
        let proof = merkle::prove(&block.tx_hashes(), 1).unwrap();
        assert!(proof.verify(&block.header.txs_root, &block.txs[1].hash(), 1, 2));
        assert_eq!(block.hash(), block.header.hash());
    }

    #[test]
    fn block_rules() {
        let wrong_chain = Block {
            header: header(),
            txs: vec![signed(1, 1, 1), signed(2, 5, 1)],
        };
        assert_eq!(
            Block::decode(&wrong_chain.encode()),
            Err(DecodeError::Invalid(ValidationError::WrongChain {
                index: 1,
                expected: ChainId(1),
                got: ChainId(5)
            }))
        );
        let invalid_tx = Block {
            header: header(),
            txs: vec![signed(1, 1, 0)],
        };
        assert_eq!(
            invalid_tx.validate(),
            Err(ValidationError::InvalidBlockTx {
                index: 0,
                error: Box::new(ValidationError::EmptyBatch)
            })
        );
        // A forged transaction count is refused from the length prefix alone.
        let mut forged = header().encode().to_vec();
        forged.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Block::decode(&forged),
            Err(DecodeError::Invalid(ValidationError::TooManyTxs {
                count: u32::MAX as usize,
                max: MAX_BLOCK_TXS
            }))
        );
        assert!(matches!(
            Block::decode(&vec![0; MAX_BLOCK_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn oversized_block_is_refused() {
        // Transactions of 64 placements are over 2 KiB each; enough of them pass 4 MiB.
        let order = OrderRequest {
            market: MarketId(1),
            client_order_id: Some(ClientOrderId(1)),
            side: Side::Sell,
            order_type: OrderType::Limit,
            price_ticks: PriceTicks(1),
            size_lots: SizeLots(1),
            time_in_force: TimeInForce::Gtt {
                expires_at: TimestampMs(1),
            },
            self_trade: SelfTradePrevention::CancelBoth,
        };
        let tx = signed_batch(1, 1, vec![BatchLeg::Place(order); MAX_BATCH_LEGS]);
        let per_tx = tx.encode().len();
        let count = MAX_BLOCK_BYTES / per_tx + 1;
        assert!(count <= MAX_BLOCK_TXS);
        let block = Block {
            header: header(),
            txs: vec![tx; count],
        };
        assert!(matches!(
            block.validate(),
            Err(ValidationError::BlockTooLarge { .. })
        ));
        assert!(matches!(
            Block::decode(&block.encode()),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn canonical_order_depends_on_parent() {
        let tx = Hash::of(Domain::Other, &[b"tx"]);
        let a = canonical_order_key(&Hash::ZERO, &tx);
        let b = canonical_order_key(&Hash::of(Domain::Other, &[b"p"]), &tx);
        assert_ne!(a, b);
    }
}
