//! Trading keys: an account's own key or an agent key a bot signs with.
//!
//! Keys are made from the operating system's randomness and stored as a small JSON file
//! readable only by its owner (mode 0600, created exclusively so an existing key is never
//! overwritten). Loading refuses a file that others can read.
//!
//! An agent key signs for another account (`account` in the file): the account approves it
//! with [`Client::approve_agent`](crate::Client::approve_agent) and a policy (markets, order
//! rate, expiry); the agent can place, modify and cancel, never move funds.

use dex_types::{AccountId, Keypair, SignatureError, SignedTransaction, Transaction};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Largest key file read, in bytes.
pub const MAX_KEY_FILE_BYTES: u64 = 4 * 1024;

/// Why a key could not be made, stored or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("the system random source failed: {0}")]
    Random(String),
    /// The file could not be written or read.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Group or others may read the file; the secret may have leaked.
    #[error("key file {path} is readable by others (mode {mode:o}); run chmod 600 on it")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is not a key file of this format.
    #[error("key file {path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A transaction's signer is not this key.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// Format tag.
    format: String,
    /// The 32-byte secret seed, hex.
    secret: String,
    /// The public key, hex (checked against the secret on load).
    public: String,
    /// The account the key acts for, hex: itself, or the owner of an agent key.
    account: String,
}

const FORMAT: &str = "dex-key-v1";

/// A signing key and the account it acts for.
#[derive(Clone)]
pub struct TraderKey {
    keypair: Keypair,
    account: AccountId,
}

impl fmt::Debug for TraderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraderKey")
            .field("signer", &self.signer())
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

fn random_seed() -> Result<[u8; 32], KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(seed)
}

impl TraderKey {
    /// A new account key from the system's randomness.
    pub fn generate() -> Result<TraderKey, KeyError> {
        Ok(TraderKey::from_seed(random_seed()?))
    }

    /// A new agent key for `owner`, from the system's randomness.
    pub fn generate_agent(owner: AccountId) -> Result<TraderKey, KeyError> {
        Ok(TraderKey::agent_from_seed(random_seed()?, owner))
    }

    /// The account key with this secret seed.
    pub fn from_seed(seed: [u8; 32]) -> TraderKey {
        let keypair = Keypair::from_seed(seed);
        TraderKey {
            account: keypair.account_id(),
            keypair,
        }
    }

    /// The agent key with this secret seed, acting for `owner`.
    pub fn agent_from_seed(seed: [u8; 32], owner: AccountId) -> TraderKey {
        TraderKey {
            keypair: Keypair::from_seed(seed),
            account: owner,
        }
    }

    /// The account whose funds and orders this key acts on.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// The key that signs (the account itself, or the agent).
    pub fn signer(&self) -> AccountId {
        self.keypair.account_id()
    }

    /// Whether this is an agent key.
    pub fn is_agent(&self) -> bool {
        self.signer() != self.account
    }

    /// Sign a transaction whose signer is this key.
    pub fn sign(&self, tx: Transaction) -> Result<SignedTransaction, KeyError> {
        Ok(self.keypair.sign(tx)?)
    }

    /// Write the key to a new file readable only by its owner. Refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = KeyFile {
            format: FORMAT.to_string(),
            secret: hex::encode(self.keypair.seed()),
            public: self.signer().to_hex(),
            account: self.account.to_hex(),
        };
        let text = serde_json::to_string_pretty(&file).expect("bug: a key file serializes");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options.open(path).map_err(io)?;
        out.write_all(text.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        out.sync_all().map_err(io)?;
        Ok(())
    }

    /// Read a key file written by [`TraderKey::save`].
    pub fn load(path: &Path) -> Result<TraderKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::InsecurePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(invalid(format!("larger than {MAX_KEY_FILE_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if file.format != FORMAT {
            return Err(invalid(format!("format {:?} is not {FORMAT}", file.format)));
        }
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&file.secret, &mut seed)
            .map_err(|_| invalid("the secret is not 64 hex characters".into()))?;
        let account =
            AccountId::from_hex(&file.account).map_err(|e| invalid(format!("account: {e}")))?;
        let key = TraderKey::agent_from_seed(seed, account);
        if key.signer().to_hex() != file.public.to_lowercase() {
            return Err(invalid("the public key does not match the secret".into()));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = TraderKey::generate().unwrap();
        assert!(!key.is_agent());
        key.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = TraderKey::load(&path).unwrap();
        assert_eq!(back.signer(), key.signer());
        assert_eq!(back.account(), key.account());
        // Never overwritten.
        assert!(matches!(key.save(&path), Err(KeyError::Io { .. })));
        // Two generated keys differ.
        assert_ne!(TraderKey::generate().unwrap().signer(), key.signer());
    }

    #[test]
    fn agent_keys_act_for_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let owner = TraderKey::generate().unwrap();
        let agent = TraderKey::generate_agent(owner.account()).unwrap();
        assert!(agent.is_agent());
        assert_eq!(agent.account(), owner.account());
        let path = dir.path().join("agent.json");
        agent.save(&path).unwrap();
        let back = TraderKey::load(&path).unwrap();
        assert_eq!(back.account(), owner.account());
        assert_eq!(back.signer(), agent.signer());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_readable_or_tampered_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        TraderKey::generate().unwrap().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            TraderKey::load(&path),
            Err(KeyError::InsecurePermissions { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let other = TraderKey::generate().unwrap().signer().to_hex();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["public"] = serde_json::Value::String(other);
        std::fs::write(&path, json.to_string()).unwrap();
        assert!(matches!(
            TraderKey::load(&path),
            Err(KeyError::Invalid { .. })
        ));
    }
}
