//! Where the account-number encryption key comes from.
//!
//! In order: `DISBURSE_ACCOUNT_KEY` (64 hex characters) in the environment, `--key-file PATH`,
//! and for the embedded SQLite database a key file beside it (`disburse.db.key`), created by
//! `disburse init` with owner-only permissions and never printed.

use std::path::{Path, PathBuf};

use disburse_core::crypto::AccountKey;
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
