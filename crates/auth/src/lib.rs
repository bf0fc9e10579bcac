//! API keys: `Authorization: Bearer <key>`, mapped to a role and a set of accounts. One key
//! store serves every service (gateway, compliance scanner, ...).
//!
//! Keys are stored hashed (SHA-256) in `<data_dir>/api_keys.json`; the plain key is shown once,
//! when it is created. A key sees and touches only its accounts: the handlers answer 404 for
//! another account's order, so a key cannot even learn that it exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use model::AccountId;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use telemetry::http::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Places and cancels orders, reads its own accounts.
    Trader,
    /// Reads every account (orders, fills, positions, alerts); cannot trade.
    Compliance,
    /// Everything, including run-time risk limits and kill switches.
    Admin,
}

/// Which accounts a key covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Accounts {
    /// `"*"`: every account.
    All(AllMarker),
    Some(BTreeSet<AccountId>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllMarker {
    #[serde(rename = "*")]
    All,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    pub accounts: Accounts,
}

impl Principal {
    /// The principal of `--insecure-dev` requests that carry no key.
    pub fn insecure_dev() -> Principal {
        Principal {
            key_id: "insecure-dev".into(),
            role: Role::Admin,
            accounts: Accounts::All(AllMarker::All),
        }
    }
    pub fn sees(&self, account: &AccountId) -> bool {
        match &self.accounts {
            Accounts::All(_) => true,
            Accounts::Some(set) => set.contains(account),
        }
    }
    pub fn can_trade(&self, account: &AccountId) -> bool {
        self.role != Role::Compliance && self.sees(account)
    }
    /// The one account a request means when it names none: the key's only account.
    pub fn default_account(&self) -> Option<&AccountId> {
        match &self.accounts {
            Accounts::Some(set) if set.len() == 1 => set.iter().next(),
            _ => None,
        }
    }
    /// `None` = no restriction (admin/compliance over all accounts).
    pub fn account_filter(&self) -> Option<&BTreeSet<AccountId>> {
        match &self.accounts {
            Accounts::All(_) => None,
            Accounts::Some(set) => Some(set),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    /// Ephemeral keys stay out of the key file.
    #[serde(skip, default = "persistent_default")]
    persistent: bool,
    id: String,
    /// Hex SHA-256 of the key.
    sha256: String,
    role: Role,
    accounts: Accounts,
}

fn persistent_default() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a key file: {source}")]
    Format {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no randomness available: {0}")]
    Random(String),
}

/// The key store. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    path: Option<PathBuf>,
    keys: Arc<RwLock<Vec<StoredKey>>>,
    insecure_dev: bool,
}

fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    /// Keys kept only in memory (tests).
    pub fn in_memory() -> ApiKeys {
        ApiKeys {
            path: None,
            keys: Arc::default(),
            insecure_dev: false,
        }
    }

    /// Load (or start) the key file.
    pub fn open(path: &Path) -> Result<ApiKeys, AuthError> {
        let keys = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| AuthError::Format {
                path: path.display().to_string(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(AuthError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Ok(ApiKeys {
            path: Some(path.to_path_buf()),
            keys: Arc::new(RwLock::new(keys)),
            insecure_dev: false,
        })
    }

    /// Accept requests without a key as admin (`--insecure-dev`).
    pub fn with_insecure_dev(mut self, on: bool) -> ApiKeys {
        self.insecure_dev = on;
        self
    }

    pub fn insecure_dev(&self) -> bool {
        self.insecure_dev
    }

    /// Create a key that lives only as long as this process (the dev keys `up` prints): a
    /// restart invalidates it, so an old terminal log never grants access again.
    pub fn create_ephemeral(&self, role: Role, accounts: Accounts) -> Result<String, AuthError> {
        self.add(role, accounts, false)
    }

    /// Create a key, store its hash, return the plain key (shown once).
    pub fn create(&self, role: Role, accounts: Accounts) -> Result<String, AuthError> {
        self.add(role, accounts, true)
    }

    fn add(&self, role: Role, accounts: Accounts, persist: bool) -> Result<String, AuthError> {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| AuthError::Random(e.to_string()))?;
        let key = format!("t26_{}", hex::encode(bytes));
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let id = format!("k{}", keys.len() + 1);
        keys.push(StoredKey {
            persistent: persist,
            id,
            sha256: sha256_hex(&key),
            role,
            accounts,
        });
        if let Some(path) = self.path.as_ref().filter(|_| persist) {
            let io = |source| AuthError::Io {
                path: path.display().to_string(),
                source,
            };
            let tmp = path.with_extension("json.tmp");
            let stored: Vec<&StoredKey> = keys.iter().filter(|k| k.persistent).collect();
            let json = serde_json::to_vec_pretty(&stored).map_err(|source| AuthError::Format {
                path: path.display().to_string(),
                source,
            })?;
            std::fs::write(&tmp, json).map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)?;
        }
        Ok(key)
    }

    /// Who sent these headers: 401 without a valid key (unless `--insecure-dev`).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let unauthorized =
            |m: &str| ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "unauthorized", m);
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            if self.insecure_dev {
                return Ok(Principal::insecure_dev());
            }
            return Err(unauthorized(
                "send an API key as `Authorization: Bearer <key>`",
            ));
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
        let hash = sha256_hex(key);
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .find(|k| k.sha256 == hash)
            .map(|k| Principal {
                key_id: k.id.clone(),
                role: k.role,
                accounts: k.accounts.clone(),
            })
            .ok_or_else(|| unauthorized("unknown API key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {key}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn keys_are_stored_hashed_and_map_to_their_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api_keys.json");
        let keys = ApiKeys::open(&path).unwrap();
        let acct = AccountId::new("test_account").unwrap();
        let key = keys
            .create(Role::Trader, Accounts::Some([acct.clone()].into()))
            .unwrap();
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(!stored.contains(&key), "the plain key must not be stored");
        assert!(stored.contains(&sha256_hex(&key)));

        let reopened = ApiKeys::open(&path).unwrap();
        let p = reopened.authenticate(&headers(&key)).unwrap();
        assert_eq!(p.role, Role::Trader);
        assert!(p.can_trade(&acct));
        assert!(!p.sees(&AccountId::new("other").unwrap()));
        assert_eq!(p.default_account(), Some(&acct));

        assert_eq!(
            reopened
                .authenticate(&headers("t26_wrong"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            reopened.authenticate(&HeaderMap::new()).unwrap_err().status,
            401
        );
        let dev = reopened.with_insecure_dev(true);
        assert_eq!(
            dev.authenticate(&HeaderMap::new()).unwrap().role,
            Role::Admin
        );
    }

    #[test]
    fn ephemeral_keys_work_now_and_never_reach_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api_keys.json");
        let keys = ApiKeys::open(&path).unwrap();
        let dev = keys
            .create_ephemeral(Role::Admin, Accounts::All(AllMarker::All))
            .unwrap();
        let kept = keys
            .create(Role::Compliance, Accounts::All(AllMarker::All))
            .unwrap();
        assert_eq!(keys.authenticate(&headers(&dev)).unwrap().role, Role::Admin);
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(
            !stored.contains(&sha256_hex(&dev)),
            "ephemeral key persisted"
        );
        assert!(stored.contains(&sha256_hex(&kept)));
        let reopened = ApiKeys::open(&path).unwrap();
        assert_eq!(
            reopened.authenticate(&headers(&dev)).unwrap_err().status,
            401
        );
        assert!(reopened.authenticate(&headers(&kept)).is_ok());
    }

    #[test]
    fn compliance_sees_everything_but_cannot_trade() {
        let p = Principal {
            key_id: "c".into(),
            role: Role::Compliance,
            accounts: Accounts::All(AllMarker::All),
        };
        let a = AccountId::new("x").unwrap();
        assert!(p.sees(&a));
        assert!(!p.can_trade(&a));
    }
}
