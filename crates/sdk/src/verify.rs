//! Check what a node says without trusting it: a fill against a header's fills root, an
//! account's balances against a header's state root, and a header against the validator
//! set's commit certificate.
//!
//! The chain of trust is: validator set (from genesis, pinned by the trader) → commit
//! certificate (more than two thirds of the voting power precommitted the block whose id is
//! the header hash) → header (its fills root and state root) → Merkle proof → the fill or
//! balance. Every decode of node-supplied bytes is size-capped before it allocates.

use dex_api::wire::{BalanceProofView, FillProofView, HeaderView, ValidatorView};
use dex_consensus::{CertificateError, CommitCertificate, ValidatorSet, ValidatorSetError};
use dex_state::{
    Balance, BalanceProof, CommittedItem, FillProof, verify_balance_proof, verify_fill_proof,
};
use dex_types::codec::decode_bounded;
use dex_types::{AccountId, AssetId, BlockHeader, ChainId, Hash, TimestampMs};

/// Largest committed item accepted, in bytes (a fill is under 300; a receipt under 200).
pub const MAX_ITEM_BYTES: usize = 1_024;
/// Largest fill proof accepted, in bytes (64 siblings of 32 bytes and two counters).
pub const MAX_FILL_PROOF_BYTES: usize = 16 + 4 + 64 * 32;
/// Largest balance proof accepted, in bytes.
pub const MAX_BALANCE_PROOF_BYTES: usize = 64 * 1024;

/// Why something did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A field is not hex of the right length.
    #[error("{field} is not valid hex")]
    Hex {
        /// Which field.
        field: &'static str,
    },
    /// Bytes did not decode (or exceed their cap).
    #[error("{what} does not decode: {reason}")]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// Why not.
        reason: String,
    },
    /// The header's fields do not hash to the hash the node gave.
    #[error("the header fields do not hash to the given block hash")]
    HeaderHash,
    /// The Merkle proof does not lead from the item to the header's root.
    #[error("the proof does not lead to the header's {root} root")]
    Proof {
        /// `fills` or `state`.
        root: &'static str,
    },
    /// The proven item is from another block.
    #[error("the item is from block {item}, the header is block {header}")]
    WrongBlock {
        /// The item's height.
        item: u64,
        /// The header's.
        header: u64,
    },
    /// The proven balances do not include the asset asked about.
    #[error("the proof holds no balance of asset {0}")]
    NoSuchAsset(AssetId),
    /// The block has no certificate but one was required.
    #[error("the block has no commit certificate")]
    NoCertificate,
    /// The certificate is for another block, height or chain.
    #[error("the certificate is for value {value} at height {height}, not this header")]
    CertificateMismatch {
        /// The certified value id.
        value: Hash,
        /// The certified height.
        height: u64,
    },
    /// The certificate's signatures do not prove a commit by the validator set.
    #[error("the certificate does not verify: {0}")]
    Certificate(#[from] CertificateError),
    /// The validator set given is not valid.
    #[error("the validator set is not valid: {0}")]
    ValidatorSet(#[from] ValidatorSetError),
}

fn decode_hex(field: &'static str, text: &str) -> Result<Vec<u8>, VerifyError> {
    hex::decode(text).map_err(|_| VerifyError::Hex { field })
}

fn hash(field: &'static str, text: &str) -> Result<Hash, VerifyError> {
    Hash::from_hex(text).map_err(|_| VerifyError::Hex { field })
}

/// The validator set from the views a node or a genesis file lists.
pub fn validator_set(views: &[ValidatorView]) -> Result<ValidatorSet, VerifyError> {
    let mut entries = Vec::with_capacity(views.len());
    for view in views {
        let key = AccountId::from_hex(&view.public_key).map_err(|_| VerifyError::Hex {
            field: "validator public key",
        })?;
        entries.push((key.0, view.voting_power));
    }
    Ok(ValidatorSet::new(entries)?)
}

/// Rebuild a header from its view and check that it hashes to the hash given.
pub fn header_from_view(view: &HeaderView) -> Result<BlockHeader, VerifyError> {
    let header = BlockHeader {
        chain_id: ChainId(view.chain_id),
        height: view.height,
        time: TimestampMs(view.time_ms),
        parent_hash: hash("parent_hash", &view.parent_hash)?,
        proposer: AccountId::from_hex(&view.proposer)
            .map_err(|_| VerifyError::Hex { field: "proposer" })?,
        txs_root: hash("txs_root", &view.txs_root)?,
        state_root: hash("state_root", &view.state_root)?,
        fills_root: hash("fills_root", &view.fills_root)?,
    };
    if header.hash() != hash("hash", &view.hash)? {
        return Err(VerifyError::HeaderHash);
    }
    Ok(header)
}

/// Check that `certificate` (hex of a `CommitCertificate`) proves that `validators`
/// committed `header` (the certified value id is the header hash).
pub fn verify_certificate(
    header: &BlockHeader,
    certificate: Option<&str>,
    validators: &ValidatorSet,
) -> Result<(), VerifyError> {
    let text = certificate.ok_or(VerifyError::NoCertificate)?;
    let bytes = decode_hex("certificate", text)?;
    let cert = CommitCertificate::decode(&bytes).map_err(|e| VerifyError::Decode {
        what: "certificate",
        reason: e.to_string(),
    })?;
    if cert.value_id != header.hash() || cert.height.0 != header.height {
        return Err(VerifyError::CertificateMismatch {
            value: cert.value_id,
            height: cert.height.0,
        });
    }
    cert.verify(validators, header.chain_id)?;
    Ok(())
}

/// A fill (or withdrawal receipt) proven to be committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedItem {
    /// The header it is committed under.
    pub header: BlockHeader,
    /// The item.
    pub item: CommittedItem,
    /// Whether the header's certificate was checked against a validator set.
    pub certified: bool,
}

/// Verify a fill proof: item → fills root → header (→ certificate, if `validators` given).
pub fn verify_fill(
    view: &FillProofView,
    validators: Option<&ValidatorSet>,
) -> Result<VerifiedItem, VerifyError> {
    let header = header_from_view(&view.header)?;
    let item: CommittedItem = decode_bounded(&decode_hex("item", &view.item)?, MAX_ITEM_BYTES)
        .map_err(|e| VerifyError::Decode {
            what: "committed item",
            reason: e.to_string(),
        })?;
    let proof: FillProof = decode_bounded(&decode_hex("proof", &view.proof)?, MAX_FILL_PROOF_BYTES)
        .map_err(|e| VerifyError::Decode {
            what: "fill proof",
            reason: e.to_string(),
        })?;
    let item_height = match &item {
        CommittedItem::Fill(fill) => fill.height,
        CommittedItem::Withdrawal(receipt) => receipt.height,
    };
    if item_height != header.height {
        return Err(VerifyError::WrongBlock {
            item: item_height,
            header: header.height,
        });
    }
    if !verify_fill_proof(&header.fills_root, &item, &proof) {
        return Err(VerifyError::Proof { root: "fills" });
    }
    if let Some(validators) = validators {
        verify_certificate(&header, view.certificate.as_deref(), validators)?;
    }
    Ok(VerifiedItem {
        header,
        item,
        certified: validators.is_some(),
    })
}

/// An account's balances proven against a header's state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBalances {
    /// The header.
    pub header: BlockHeader,
    /// Every balance of the account, by asset.
    pub balances: Vec<(AssetId, Balance)>,
    /// Whether the header's certificate was checked against a validator set.
    pub certified: bool,
}

/// Verify a balance proof for `account`: every balance → account leaf → state root →
/// header (→ certificate, if `validators` given).
pub fn verify_balances(
    view: &BalanceProofView,
    account: &AccountId,
    validators: Option<&ValidatorSet>,
) -> Result<VerifiedBalances, VerifyError> {
    let header = header_from_view(&view.header)?;
    let proof: BalanceProof =
        decode_bounded(&decode_hex("proof", &view.proof)?, MAX_BALANCE_PROOF_BYTES).map_err(
            |e| VerifyError::Decode {
                what: "balance proof",
                reason: e.to_string(),
            },
        )?;
    for (asset, balance) in &proof.balances {
        if !verify_balance_proof(&header.state_root, account, *asset, balance, &proof) {
            return Err(VerifyError::Proof { root: "state" });
        }
    }
    if proof.balances.is_empty() {
        return Err(VerifyError::Proof { root: "state" });
    }
    if let Some(validators) = validators {
        verify_certificate(&header, view.certificate.as_deref(), validators)?;
    }
    Ok(VerifiedBalances {
        header,
        balances: proof.balances,
        certified: validators.is_some(),
    })
}
