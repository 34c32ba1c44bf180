//! Network identity: an ed25519 key given by its 32-byte seed, and the mapping between a
//! peer id and an ed25519 public key.
//!
//! A validator's network identity can be its validator key, so the node can tell which
//! connected peer is which validator without a separate handshake: the peer id of an ed25519
//! key inlines the public key, and noise proves the remote holds the secret.

use libp2p::PeerId;
use libp2p::identity::{self, Keypair, PublicKey};

/// A 32-byte ed25519 public key that is not a point on the curve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the 32 bytes are not a valid ed25519 public key")]
pub struct InvalidPublicKey;

/// The libp2p keypair of the ed25519 secret seed `seed` (the same 32 bytes an
/// `ed25519_dalek::SigningKey` is built from).
pub fn keypair_from_seed(seed: [u8; 32]) -> Keypair {
    // `ed25519_from_bytes` zeroes its input; it gets a copy, the caller keeps the seed.
    let mut secret = seed;
    Keypair::ed25519_from_bytes(&mut secret)
        .expect("bug: every 32-byte string is a valid ed25519 seed")
}

/// The peer id of the node whose identity seed is `seed`.
pub fn peer_id_from_seed(seed: [u8; 32]) -> PeerId {
    keypair_from_seed(seed).public().to_peer_id()
}

/// The peer id of the ed25519 public key `public` (for example a validator key from genesis).
pub fn peer_id_from_ed25519(public: &[u8; 32]) -> Result<PeerId, InvalidPublicKey> {
    let key = identity::ed25519::PublicKey::try_from_bytes(public).map_err(|_| InvalidPublicKey)?;
    Ok(PublicKey::from(key).to_peer_id())
}

/// The ed25519 public key a peer id stands for, if the peer id inlines one.
///
/// Peer ids of ed25519 keys embed the protobuf-encoded key after a two-byte multihash header
/// (identity code, length). The result is checked by re-deriving the peer id from the key, so
/// a peer id of another key type or a hashed peer id gives `None`, never a wrong key.
pub fn ed25519_from_peer_id(peer: &PeerId) -> Option<[u8; 32]> {
    let bytes = peer.to_bytes();
    let encoded_key = bytes.get(2..)?;
    let key = PublicKey::try_decode_protobuf(encoded_key).ok()?;
    if key.to_peer_id() != *peer {
        return None;
    }
    let ed25519 = key.try_into_ed25519().ok()?;
    Some(ed25519.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_gives_the_same_public_key_as_ed25519_dalek() {
        for first in [0u8, 1, 7, 255] {
            let seed = [first; 32];
            let dalek = ed25519_dalek::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes();
            let peer = peer_id_from_seed(seed);
            assert_eq!(ed25519_from_peer_id(&peer), Some(dalek));
            assert_eq!(peer_id_from_ed25519(&dalek), Ok(peer));
        }
    }

    #[test]
    fn different_seeds_give_different_peers() {
        assert_ne!(peer_id_from_seed([1; 32]), peer_id_from_seed([2; 32]));
    }

    #[test]
    fn a_peer_id_that_inlines_no_ed25519_key_has_none() {
        // A sha2-256 multihash peer id (code 0x12, 32 bytes) hides its key.
        let mut bytes = vec![0x12, 32];
        bytes.extend_from_slice(&[9u8; 32]);
        let hashed = PeerId::from_bytes(&bytes).expect("a valid sha2-256 peer id");
        assert_eq!(ed25519_from_peer_id(&hashed), None);
    }

    #[test]
    fn an_invalid_point_is_rejected() {
        // Not every 32-byte string decompresses to a curve point; find one deterministically.
        let invalid = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| identity::ed25519::PublicKey::try_from_bytes(bytes).is_err())
            .expect("some constant byte string is not a curve point");
        assert_eq!(peer_id_from_ed25519(&invalid), Err(InvalidPublicKey));
    }
}
