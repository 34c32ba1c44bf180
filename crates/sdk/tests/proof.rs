//! Proofs from a live node verify, and every kind of tampering is caught: the item, the
//! proof, the header, a forged header with a matching root, and certificates with too few
//! or the wrong signatures.

mod common;

use common::{Devnet, d};
use dex_api::wire::{FillProofView, ValidatorView};
use dex_consensus::{CertificateError, CommitCertificate};
use dex_sdk::verify::{VerifyError, header_from_view, validator_set, verify_balances, verify_fill};
use dex_sdk::{OrderParams, TraderKey};
use dex_state::{BalanceProof, CommittedItem};
use dex_types::{MarketId, Side};

const M: MarketId = MarketId(1);

async fn one_fill(net: &Devnet) -> (dex_sdk::Client, u64, u32) {
    let maker = net.client(0).await;
    let taker = net.client(1).await;
    maker
        .place(OrderParams::limit(M, Side::Sell, d("100"), d("0.25")))
        .await
        .unwrap();
    taker
        .place(OrderParams::limit(M, Side::Buy, d("100"), d("0.25")).ioc())
        .await
        .unwrap();
    let fill = maker.fills(None, 1).await.unwrap().pop().unwrap();
    (maker, fill.height, fill.index)
}

fn flip_hex(text: &str, byte: usize) -> String {
    let mut bytes = hex::decode(text).unwrap();
    bytes[byte] ^= 1;
    hex::encode(bytes)
}

#[tokio::test]
async fn fill_proofs_verify_and_tampering_is_caught() {
    let net = Devnet::start(2).await;
    let (client, height, index) = one_fill(&net).await;
    let verified = client.verify_fill(height, index).await.unwrap();
    assert!(verified.certified);
    let CommittedItem::Fill(fill) = &verified.item else {
        panic!("a fill was proven")
    };
    assert_eq!(fill.maker, client.account().unwrap());
    assert_eq!(fill.height, height);

    let view = client.fill_proof(height, index).await.unwrap();
    let set = validator_set(&client.chain().validators).unwrap();
    assert!(verify_fill(&view, Some(&set)).is_ok());

    // The item: the last byte is part of the taker's remaining size; it still decodes.
    let item_len = hex::decode(&view.item).unwrap().len();
    let mut bad = view.clone();
    bad.item = flip_hex(&view.item, item_len - 1);
    assert_eq!(
        verify_fill(&bad, None),
        Err(VerifyError::Proof { root: "fills" })
    );
    // The proof: its first bytes are the item's index.
    let mut bad = view.clone();
    bad.proof = flip_hex(&view.proof, 0);
    assert_eq!(
        verify_fill(&bad, None),
        Err(VerifyError::Proof { root: "fills" })
    );
    // The header: a changed root no longer hashes to the block id.
    let mut bad = view.clone();
    bad.header.fills_root = dex_types::Hash([7; 32]).to_hex();
    assert_eq!(verify_fill(&bad, None), Err(VerifyError::HeaderHash));
    // Garbage bytes are refused before any allocation they ask for.
    let mut bad = view.clone();
    bad.proof = "ff".repeat(5_000);
    assert!(matches!(
        verify_fill(&bad, None),
        Err(VerifyError::Decode { .. })
    ));

    // A forger rewrites the fill, builds a header whose fills root matches it and rehashes
    // the header: the proof checks out, and only the certificate exposes it.
    let forged = forge(&view);
    assert!(verify_fill(&forged, None).is_ok());
    assert!(matches!(
        verify_fill(&forged, Some(&set)),
        Err(VerifyError::CertificateMismatch { .. })
    ));
}

/// A fill proof for a fill with double the size, under a header built to match it.
fn forge(view: &FillProofView) -> FillProofView {
    let item: CommittedItem = borsh::from_slice(&hex::decode(&view.item).unwrap()).unwrap();
    let CommittedItem::Fill(mut fill) = item else {
        panic!("a fill")
    };
    fill.size = dex_types::SizeLots(fill.size.0 * 2);
    let forged = CommittedItem::Fill(fill);
    let proof: dex_state::FillProof =
        borsh::from_slice(&hex::decode(&view.proof).unwrap()).unwrap();
    assert_eq!(proof.count, 1, "one fill in the block");
    let mut header = header_from_view(&view.header).unwrap();
    header.fills_root = dex_types::merkle::root(&[forged.leaf_hash()]);
    let mut out = view.clone();
    out.item = hex::encode(borsh::to_vec(&forged).unwrap());
    out.header = dex_api::convert::header(&header);
    out
}

#[tokio::test]
async fn certificates_need_more_than_two_thirds_of_the_right_validators() {
    let net = Devnet::start(2).await;
    let (client, height, index) = one_fill(&net).await;
    let view = client.fill_proof(height, index).await.unwrap();
    let header = header_from_view(&view.header).unwrap();
    let ours = client.chain().validators.clone();
    let set = validator_set(&ours).unwrap();
    assert!(
        dex_sdk::verify::verify_certificate(&header, view.certificate.as_deref(), &set).is_ok()
    );

    // The chain's one signature among four equal validators is a quarter of the power.
    let mut four = ours.clone();
    for seed in [5u8, 6, 7] {
        four.push(ValidatorView {
            public_key: TraderKey::from_seed([seed; 32]).signer().to_hex(),
            voting_power: 1,
        });
    }
    let four = validator_set(&four).unwrap();
    let result = dex_sdk::verify::verify_certificate(&header, view.certificate.as_deref(), &four);
    assert!(
        matches!(
            result,
            Err(VerifyError::Certificate(
                CertificateError::InsufficientPower { .. }
                    | CertificateError::InvalidSignature { .. }
            ))
        ),
        "{result:?}"
    );

    // The same certificate with its signatures stripped.
    let mut cert =
        CommitCertificate::decode(&hex::decode(view.certificate.as_ref().unwrap()).unwrap())
            .unwrap();
    cert.signatures.clear();
    let stripped = hex::encode(cert.encode());
    assert_eq!(
        dex_sdk::verify::verify_certificate(&header, Some(&stripped), &set),
        Err(VerifyError::Certificate(
            CertificateError::InsufficientPower {
                signed: 0,
                total: 1
            }
        ))
    );
    // Another validator set: the signature is not theirs.
    let stranger = validator_set(&[ValidatorView {
        public_key: TraderKey::from_seed([9; 32]).signer().to_hex(),
        voting_power: 1,
    }])
    .unwrap();
    assert!(matches!(
        dex_sdk::verify::verify_certificate(&header, view.certificate.as_deref(), &stranger),
        Err(VerifyError::Certificate(
            CertificateError::InvalidSignature { .. }
        ))
    ));
    // No certificate at all.
    assert_eq!(
        dex_sdk::verify::verify_certificate(&header, None, &set),
        Err(VerifyError::NoCertificate)
    );
}

#[tokio::test]
async fn balance_proofs_verify_and_a_changed_balance_is_caught() {
    let net = Devnet::start(2).await;
    let (client, _, _) = one_fill(&net).await;
    let account = client.account().unwrap();
    let view = client.balance_proof(None).await.unwrap();
    let set = validator_set(&client.chain().validators).unwrap();
    let verified = verify_balances(&view, &account, Some(&set)).unwrap();
    assert!(verified.certified);
    let quote = verified.balances[0].1;
    let ledger_quote = net
        .with_ledger(move |l| l.balance(&account, dex_types::AssetId(0)))
        .await;
    // Nothing traded since, so the proven balance is the ledger's now.
    assert_eq!(quote, ledger_quote);
    assert!(quote.locked == 0 && quote.free > 0);
    // One more unit of free quote: the proof no longer leads to the state root.
    let mut proof: BalanceProof = borsh::from_slice(&hex::decode(&view.proof).unwrap()).unwrap();
    proof.balances[0].1.free += 1;
    let mut bad = view.clone();
    bad.proof = hex::encode(borsh::to_vec(&proof).unwrap());
    assert_eq!(
        verify_balances(&bad, &account, None),
        Err(VerifyError::Proof { root: "state" })
    );
    // Someone else's account cannot use this proof.
    let other = net.keys[1].account();
    assert_eq!(
        verify_balances(&view, &other, None),
        Err(VerifyError::Proof { root: "state" })
    );
}
