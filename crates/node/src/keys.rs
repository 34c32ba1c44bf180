//! Validator key files: the ed25519 seed that signs votes and proposals and is the node's
//! libp2p identity. Written readable by the owner only; never logged.

use crate::error::NodeError;
use crate::files;
use dex_types::AccountId;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// The public key, for the operator to copy into the chain spec.
    public_key: AccountId,
    /// The 32-byte secret seed, hex.
    secret_seed: String,
}

/// A validator's key.
#[derive(Clone)]
pub struct ValidatorKey {
    signing: SigningKey,
}

impl fmt::Debug for ValidatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl ValidatorKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<ValidatorKey, NodeError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| NodeError::Config(format!("no randomness for a key: {e}")))?;
        Ok(ValidatorKey::from_seed(seed))
    }

    /// The key with this seed.
    pub fn from_seed(seed: [u8; 32]) -> ValidatorKey {
        ValidatorKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The public key, as the chain spec lists it.
    pub fn public_key(&self) -> AccountId {
        AccountId(self.signing.verifying_key().to_bytes())
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The seed (the libp2p identity is derived from it).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Read a key file; it must hold a seed matching its public key.
    pub fn load(path: &Path) -> Result<ValidatorKey, NodeError> {
        let error = |detail: &str| NodeError::File {
            path: path.to_owned(),
            detail: detail.to_owned(),
        };
        let bytes = files::read_bounded(path, 4_096)?;
        let file: KeyFile =
            serde_json::from_slice(&bytes).map_err(|_| error("not a validator key file"))?;
        let seed: [u8; 32] = hex::decode(file.secret_seed.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| error("secret_seed must be 64 hex digits"))?;
        let key = ValidatorKey::from_seed(seed);
        if key.public_key() != file.public_key {
            return Err(error(
                "public_key does not match secret_seed; the file is damaged",
            ));
        }
        Ok(key)
    }

    /// Write a key file readable by its owner only. Refuses to replace an existing file,
    /// so a validator's key is never lost to a repeated command.
    pub fn save(&self, path: &Path) -> Result<(), NodeError> {
        if path.exists() {
            return Err(NodeError::File {
                path: path.to_owned(),
                detail: "already exists; refusing to overwrite a key".to_owned(),
            });
        }
        let file = KeyFile {
            public_key: self.public_key(),
            secret_seed: hex::encode(self.seed()),
        };
        let text = serde_json::to_string_pretty(&file).expect("bug: a key file serialises");
        files::write_file(path, text.as_bytes(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips_and_refuses_damage_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator.key");
        let key = ValidatorKey::from_seed([7; 32]);
        key.save(&path).unwrap();
        assert_eq!(
            ValidatorKey::load(&path).unwrap().public_key(),
            key.public_key()
        );
        assert!(
            key.save(&path).is_err(),
            "an existing key is never overwritten"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "a key file is private to its owner");
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let other = ValidatorKey::from_seed([8; 32]).public_key().to_hex();
        let damaged = text.replace(&key.public_key().to_hex(), &other);
        std::fs::write(&path, damaged).unwrap();
        assert!(ValidatorKey::load(&path).is_err());
        std::fs::write(&path, "{}").unwrap();
        assert!(ValidatorKey::load(&path).is_err());
    }
}
