//! Where the account-number encryption key comes from.
//!
//! In order: `DISBURSE_ACCOUNT_KEY` (64 hex characters) in the environment, `--key-file PATH`,
//! and for the embedded SQLite database a key file beside it (`disburse.db.key`), created by
//! `disburse init` with owner-only permissions and never printed.
//!
//! The audit chain key (HMAC-SHA256 of every audit event, see `disburse_core::crypto::ChainKey`)
//! comes, in order, from `DISBURSE_CHAIN_KEY` (64 hex characters), `--chain-key-file PATH`, a
//! key file beside the SQLite database (`disburse.db.chain-key`) if there is one, and otherwise
//! is derived from the account key. It is never in the database either way.

use std::path::{Path, PathBuf};

use disburse_core::crypto::{AccountKey, ChainKey};
use disburse_store::{normalize_url, Backend};

use crate::EngineError;

#[derive(Debug, Clone)]
pub enum KeySource {
    Env,
    File(PathBuf),
}

/// The key file that belongs to a SQLite database URL, if it is a file.
pub fn default_key_file(db_url: &str) -> Option<PathBuf> {
    let (backend, url) = normalize_url(db_url).ok()?;
    if backend != Backend::Sqlite {
        return None;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(format!("{path}.key")))
}

/// Finds the key. `create`: make a new key file when none exists (only `init` does this).
pub fn load_key(
    db_url: &str,
    key_file: Option<&Path>,
    create: bool,
) -> Result<(AccountKey, KeySource), EngineError> {
    if let Ok(hex) = std::env::var("DISBURSE_ACCOUNT_KEY") {
        let key = AccountKey::from_hex(&hex)
            .map_err(|e| EngineError::Key(format!("DISBURSE_ACCOUNT_KEY: {e}")))?;
        return Ok((key, KeySource::Env));
    }
    let path = match key_file {
        Some(p) => p.to_path_buf(),
        None => default_key_file(db_url).ok_or_else(|| {
            EngineError::Key(
                "no key: set DISBURSE_ACCOUNT_KEY (64 hex characters) or pass --key-file".into(),
            )
        })?,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = AccountKey::from_hex(&text)
                .map_err(|e| EngineError::Key(format!("{}: {e}", path.display())))?;
            Ok((key, KeySource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = AccountKey::generate();
            write_private(&path, &key.to_hex())?;
            Ok((key, KeySource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(EngineError::Key(format!(
            "no key file at {}: run `disburse init` first",
            path.display()
        ))),
        Err(e) => Err(EngineError::Key(format!("{}: {e}", path.display()))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainKeySource {
    Env,
    File(PathBuf),
    /// No chain key of its own: derived from the account key.
    DerivedFromAccountKey,
}

/// The chain key file that belongs to a SQLite database URL, if it is a file.
pub fn default_chain_key_file(db_url: &str) -> Option<PathBuf> {
    let key_file = default_key_file(db_url)?;
    let db_path = key_file.to_str()?.strip_suffix(".key")?;
    Some(PathBuf::from(format!("{db_path}.chain-key")))
}

/// Finds the audit chain key (see the module text for the order).
pub fn load_chain_key(
    db_url: &str,
    chain_key_file: Option<&Path>,
    account_key: &AccountKey,
) -> Result<(ChainKey, ChainKeySource), EngineError> {
    if let Ok(hex) = std::env::var("DISBURSE_CHAIN_KEY") {
        let key = ChainKey::from_hex(&hex)
            .map_err(|e| EngineError::Key(format!("DISBURSE_CHAIN_KEY: {e}")))?;
        return Ok((key, ChainKeySource::Env));
    }
    let (path, required) = match chain_key_file {
        Some(p) => (Some(p.to_path_buf()), true),
        None => (default_chain_key_file(db_url), false),
    };
    if let Some(path) = path {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = ChainKey::from_hex(&text)
                    .map_err(|e| EngineError::Key(format!("{}: {}", path.display(), chain(e))))?;
                return Ok((key, ChainKeySource::File(path)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
            Err(e) => return Err(EngineError::Key(format!("{}: {e}", path.display()))),
        }
    }
    Ok((
        ChainKey::derived_from(account_key),
        ChainKeySource::DerivedFromAccountKey,
    ))
}

/// The hex errors speak of the account key; this is the chain key.
fn chain(e: disburse_core::crypto::CryptoError) -> String {
    e.to_string().replace("account key", "chain key")
}

/// Writes a new chain key file, owner-only, refusing to replace one (a chain hashed with the
/// old key would no longer verify).
pub fn create_chain_key_file(path: &Path) -> Result<ChainKey, EngineError> {
    let key = ChainKey::generate();
    write_private(path, &key.to_hex())?;
    Ok(key)
}

fn write_private(path: &Path, text: &str) -> Result<(), EngineError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| EngineError::Key(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| EngineError::Key(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_key_comes_from_its_file_or_is_derived() {
        let dir = disburse_store::testing::temp_dir();
        let db = dir.join("disburse.db");
        let url = db.display().to_string();
        let account = AccountKey::generate();
        assert_eq!(
            default_chain_key_file(&url),
            Some(dir.join("disburse.db.chain-key"))
        );
        assert_eq!(default_chain_key_file("postgres://u@h/db"), None);
        // Nothing configured (and no DISBURSE_CHAIN_KEY in the test environment): derived.
        if std::env::var("DISBURSE_CHAIN_KEY").is_err() {
            let (key, source) = load_chain_key(&url, None, &account).unwrap();
            assert_eq!(source, ChainKeySource::DerivedFromAccountKey);
            assert_eq!(key.to_hex(), ChainKey::derived_from(&account).to_hex());
            // A file beside the database wins over the derivation.
            let file = default_chain_key_file(&url).unwrap();
            let made = create_chain_key_file(&file).unwrap();
            let (key, source) = load_chain_key(&url, None, &account).unwrap();
            assert_eq!(source, ChainKeySource::File(file.clone()));
            assert_eq!(key.to_hex(), made.to_hex());
            assert!(create_chain_key_file(&file).is_err(), "never replaced");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
            }
            // A named file must exist, and must hold a key; the error names the file, not a key.
            let missing = dir.join("nope");
            assert!(load_chain_key(&url, Some(&missing), &account).is_err());
            let bad = dir.join("bad");
            std::fs::write(&bad, "zz").unwrap();
            let err = load_chain_key(&url, Some(&bad), &account)
                .unwrap_err()
                .to_string();
            assert!(err.contains("bad") && err.contains("chain key"), "{err}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
