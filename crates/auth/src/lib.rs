//! API keys: `Authorization: Bearer <key>`, mapped to a role and a set of accounts. One key
//! store serves every service (gateway, compliance scanner, ...).
//!
//! Keys are stored hashed (SHA-256) in `<data_dir>/api_keys.json`; the plain key is shown once,
//! when it is created. A key sees and touches only its accounts: the handlers answer 404 for
//! another account's order, so a key cannot even learn that it exists.
//!
//! The file is private to its owner (mode 0600, from the moment it is created) and replaced
//! atomically and durably (temporary file, fsync, rename, fsync of the directory). Keys are
//! created, listed and revoked with `trade2026 keys`, also while the platform runs: a store
//! opened from the file looks at most once a second whether the file changed and then rereads
//! it, so a revoked key stops working within about a second.

mod file;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
pub use file::permissions_warning;
use model::{AccountId, Timestamp};
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
    id: String,
    /// Hex SHA-256 of the key.
    sha256: String,
    role: Role,
    accounts: Accounts,
    /// When the key was created (files written before keys had a time have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
}

/// What `keys list` shows of a key: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub role: Role,
    pub accounts: Accounts,
    pub created_at: Option<Timestamp>,
}

impl From<&StoredKey> for KeyInfo {
    fn from(k: &StoredKey) -> KeyInfo {
        KeyInfo {
            id: k.id.clone(),
            role: k.role,
            accounts: k.accounts.clone(),
            created_at: k.created_at,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Trader => "trader",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
        })
    }
}

impl fmt::Display for Accounts {
    /// `*` or the accounts joined by commas (as `keys create --accounts` takes them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Accounts::All(_) => f.write_str("*"),
            Accounts::Some(set) => {
                let names: Vec<&str> = set.iter().map(AccountId::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
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
    #[error("no key {id:?} in {path}")]
    UnknownKey { id: String, path: String },
    #[error("keys kept only in memory cannot be listed or revoked")]
    NoFile,
}

/// How often at most a request looks whether the key file changed (one `stat` a second for
/// every service together: they share one `ApiKeys`).
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The name of the key file in a data dir.
pub const KEY_FILE: &str = "api_keys.json";

/// The key file of a data dir.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

struct Keys {
    /// As in the file when it was last read (or written by this process).
    stored: Vec<StoredKey>,
    /// Keys that live only as long as this process (the dev keys `up` prints).
    ephemeral: Vec<StoredKey>,
    stamp: Option<file::Stamp>,
}

impl Keys {
    fn all(&self) -> impl Iterator<Item = &StoredKey> {
        self.stored.iter().chain(&self.ephemeral)
    }
}

struct Store {
    path: Option<PathBuf>,
    keys: RwLock<Keys>,
    /// Milliseconds after `opened` of the last look at the file.
    checked_ms: AtomicU64,
    opened: Instant,
}

/// The key store. Cheap to clone; clones share the keys. A store opened from a file notices
/// when the file changes (`keys create` / `keys revoke` from another process) within about a
/// second and serves the file's keys from then on.
#[derive(Clone)]
pub struct ApiKeys {
    store: Arc<Store>,
    insecure_dev: bool,
}

fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn random_hex<const N: usize>() -> Result<String, AuthError> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

impl ApiKeys {
    fn with(path: Option<PathBuf>, stored: Vec<StoredKey>, stamp: Option<file::Stamp>) -> ApiKeys {
        ApiKeys {
            store: Arc::new(Store {
                path,
                keys: RwLock::new(Keys {
                    stored,
                    ephemeral: Vec::new(),
                    stamp,
                }),
                checked_ms: AtomicU64::new(0),
                opened: Instant::now(),
            }),
            insecure_dev: false,
        }
    }

    /// Keys kept only in memory (tests).
    pub fn in_memory() -> ApiKeys {
        ApiKeys::with(None, Vec::new(), None)
    }

    /// Load (or start) the key file.
    pub fn open(path: &Path) -> Result<ApiKeys, AuthError> {
        let (stored, stamp) = file::read(path)?;
        if let Some(warning) = file::permissions_warning(path) {
            tracing::warn!("{warning}");
        }
        Ok(ApiKeys::with(Some(path.to_path_buf()), stored, stamp))
    }

    /// Accept requests without a key as admin (`--insecure-dev`).
    pub fn with_insecure_dev(mut self, on: bool) -> ApiKeys {
        self.insecure_dev = on;
        self
    }

    pub fn insecure_dev(&self) -> bool {
        self.insecure_dev
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.store.keys.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.store.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Create a key that lives only as long as this process (the dev keys `up` prints): a
    /// restart invalidates it, so an old terminal log never grants access again.
    pub fn create_ephemeral(&self, role: Role, accounts: Accounts) -> Result<String, AuthError> {
        self.add(role, accounts, false).map(|(key, _)| key)
    }

    /// Create a key, store its hash, return the plain key (shown once) and what is stored.
    pub fn create(&self, role: Role, accounts: Accounts) -> Result<String, AuthError> {
        self.create_key(role, accounts).map(|(key, _)| key)
    }

    /// [`ApiKeys::create`], also returning what `keys list` will show of the key.
    pub fn create_key(
        &self,
        role: Role,
        accounts: Accounts,
    ) -> Result<(String, KeyInfo), AuthError> {
        self.add(role, accounts, true)
    }

    fn add(
        &self,
        role: Role,
        accounts: Accounts,
        persist: bool,
    ) -> Result<(String, KeyInfo), AuthError> {
        let key = format!("t26_{}", random_hex::<24>()?);
        let mut keys = self.write_keys();
        let path = self.store.path.as_ref().filter(|_| persist);
        if let Some(path) = path {
            // Change the file as it is now, not as this process last saw it (a revoke made by
            // another process since then must not come back).
            (keys.stored, keys.stamp) = file::read(path)?;
        }
        let id = loop {
            // Random, so an id is never handed out again after a revoke (ids name keys in the
            // journal: who acknowledged an alert, who changed a risk limit).
            let id = format!("k_{}", random_hex::<5>()?);
            if !keys.all().any(|k| k.id == id) {
                break id;
            }
        };
        let stored = StoredKey {
            id,
            sha256: sha256_hex(&key),
            role,
            accounts,
            created_at: Some(Timestamp::now()),
        };
        let info = KeyInfo::from(&stored);
        if let Some(path) = path {
            let mut next: Vec<&StoredKey> = keys.stored.iter().collect();
            next.push(&stored);
            let stamp = file::write(path, &next)?;
            keys.stored.push(stored);
            keys.stamp = stamp;
        } else if persist {
            keys.stored.push(stored);
        } else {
            keys.ephemeral.push(stored);
        }
        Ok((key, info))
    }

    /// The keys of the file, oldest first (never their secrets or hashes).
    pub fn list(&self) -> Result<Vec<KeyInfo>, AuthError> {
        let path = self.store.path.as_ref().ok_or(AuthError::NoFile)?;
        let (stored, _) = file::read(path)?;
        Ok(stored.iter().map(KeyInfo::from).collect())
    }

    /// Removes the key `id` from the file; every process serving this file stops accepting it
    /// within about a second.
    pub fn revoke(&self, id: &str) -> Result<KeyInfo, AuthError> {
        let path = self.store.path.as_ref().ok_or(AuthError::NoFile)?;
        let mut keys = self.write_keys();
        (keys.stored, keys.stamp) = file::read(path)?;
        let at =
            keys.stored
                .iter()
                .position(|k| k.id == id)
                .ok_or_else(|| AuthError::UnknownKey {
                    id: id.to_owned(),
                    path: path.display().to_string(),
                })?;
        let removed = keys.stored.remove(at);
        let rest: Vec<&StoredKey> = keys.stored.iter().collect();
        keys.stamp = file::write(path, &rest)?;
        Ok(KeyInfo::from(&removed))
    }

    /// Rereads the file if it changed, looking at most once per [`RELOAD_CHECK`]. A file that
    /// cannot be read keeps the keys as they were (logged once per change of the file).
    fn refresh(&self) {
        let Some(path) = &self.store.path else {
            return;
        };
        let now = u64::try_from(self.store.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.store.checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < RELOAD_CHECK.as_millis() as u64
            || self
                .store
                .checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let stamp = match file::stamp(path) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look at the API key file; keeping the keys");
                return;
            }
        };
        if stamp == self.read_keys().stamp {
            return;
        }
        let mut keys = self.write_keys();
        match file::read(path) {
            Ok((stored, stamp)) => {
                tracing::info!(keys = stored.len(), path = %path.display(), "API key file reloaded");
                keys.stored = stored;
                keys.stamp = stamp;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the API key file changed but cannot be read; keeping the keys");
                keys.stamp = stamp;
            }
        }
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
        self.refresh();
        let hash = sha256_hex(key);
        let keys = self.read_keys();
        keys.all()
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

    fn one(a: &str) -> Accounts {
        Accounts::Some([AccountId::new(a).unwrap()].into())
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path());
        // A world-readable leftover of an interrupted write must not pass its mode on.
        std::fs::write(path.with_extension("json.tmp"), "[]").unwrap();
        std::fs::set_permissions(
            path.with_extension("json.tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let keys = ApiKeys::open(&path).unwrap();
        keys.create(Role::Admin, Accounts::All(AllMarker::All))
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(permissions_warning(&path).is_none());
        assert!(!path.with_extension("json.tmp").exists());
        let id = keys.list().unwrap()[0].id.clone();
        keys.revoke(&id).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a rewrite stays private");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = permissions_warning(&path).unwrap();
        assert!(
            warning.contains("644") && warning.contains("chmod 600"),
            "{warning}"
        );
    }

    #[test]
    fn keys_are_listed_without_secrets_and_revoked_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path());
        let keys = ApiKeys::open(&path).unwrap();
        let (trader, info) = keys.create_key(Role::Trader, one("alpha")).unwrap();
        let admin = keys
            .create(Role::Admin, Accounts::All(AllMarker::All))
            .unwrap();
        let dev = keys
            .create_ephemeral(Role::Admin, Accounts::All(AllMarker::All))
            .unwrap();
        let listed = keys.list().unwrap();
        assert_eq!(listed.len(), 2, "ephemeral keys are not in the file");
        assert_eq!(listed[0], info);
        assert_eq!(
            (listed[0].role, listed[0].accounts.to_string()),
            (Role::Trader, "alpha".to_string())
        );
        assert_eq!(listed[1].accounts.to_string(), "*");
        assert!(listed.iter().all(|k| k.created_at.is_some()));
        let shown = serde_json::to_string(&listed).unwrap();
        assert!(!shown.contains(&trader) && !shown.contains(&sha256_hex(&trader)));

        let removed = keys.revoke(&info.id).unwrap();
        assert_eq!(removed.id, info.id);
        assert_eq!(
            keys.authenticate(&headers(&trader)).unwrap_err().status,
            401
        );
        assert!(keys.authenticate(&headers(&admin)).is_ok());
        assert!(
            keys.authenticate(&headers(&dev)).is_ok(),
            "ephemeral keys stay"
        );
        let e = keys.revoke(&info.id).unwrap_err();
        assert!(matches!(e, AuthError::UnknownKey { .. }), "{e}");
        assert!(e.to_string().contains(&info.id), "{e}");
        // Ids are never handed out again.
        let mut ids: Vec<String> = (0..20)
            .map(|_| {
                let (_, k) = keys.create_key(Role::Trader, one("alpha")).unwrap();
                k.id
            })
            .collect();
        ids.push(listed[1].id.clone());
        assert!(!ids.contains(&info.id));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 21);
        assert!(matches!(
            ApiKeys::in_memory().revoke("k1").unwrap_err(),
            AuthError::NoFile
        ));
    }

    /// Polls a bounded time for what another process's change makes true (no timing claim).
    fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_running_store_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path());
        let running = ApiKeys::open(&path).unwrap();
        let dev = running
            .create_ephemeral(Role::Admin, Accounts::All(AllMarker::All))
            .unwrap();
        // Another process (`trade2026 keys ...`) has its own store on the same file.
        let cli = ApiKeys::open(&path).unwrap();
        let (key, info) = cli.create_key(Role::Compliance, one("alpha")).unwrap();
        eventually("a created key is accepted", || {
            running.authenticate(&headers(&key)).is_ok()
        });
        let p = running.authenticate(&headers(&key)).unwrap();
        assert_eq!(
            (p.key_id.as_str(), p.role),
            (info.id.as_str(), Role::Compliance)
        );

        ApiKeys::open(&path).unwrap().revoke(&info.id).unwrap();
        eventually("a revoked key is refused", || {
            running.authenticate(&headers(&key)).is_err()
        });
        assert!(running.authenticate(&headers(&dev)).is_ok());

        // A file that cannot be read keeps the keys that were good.
        let kept = cli
            .create(Role::Admin, Accounts::All(AllMarker::All))
            .unwrap();
        eventually("the new key", || {
            running.authenticate(&headers(&kept)).is_ok()
        });
        std::fs::write(&path, "not json").unwrap();
        std::thread::sleep(RELOAD_CHECK + Duration::from_millis(100));
        assert!(running.authenticate(&headers(&kept)).is_ok());
        // Deleting the file revokes every stored key.
        std::fs::remove_file(&path).unwrap();
        eventually("no file, no stored keys", || {
            running.authenticate(&headers(&kept)).is_err()
        });
        assert!(running.authenticate(&headers(&dev)).is_ok());
    }

    #[test]
    fn a_key_file_without_creation_times_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path());
        let key = "t26_old";
        std::fs::write(
            &path,
            format!(
                r#"[{{"id":"k1","sha256":"{}","role":"trader","accounts":["alpha"]}}]"#,
                sha256_hex(key)
            ),
        )
        .unwrap();
        let keys = ApiKeys::open(&path).unwrap();
        assert_eq!(keys.authenticate(&headers(key)).unwrap().key_id, "k1");
        assert_eq!(keys.list().unwrap()[0].created_at, None);
        keys.create(Role::Trader, one("beta")).unwrap();
        assert!(keys.list().unwrap().iter().any(|k| k.id == "k1"));
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
