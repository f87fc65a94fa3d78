//! The service's operational files and tables, where the server needs the store to do it.

use std::path::PathBuf;

use sqlx::Row;

use crate::{Backend, Db, Result};

/// Makes the SQLite database file and its `-wal` and `-shm` files readable and writable by their
/// owner only (0600): they hold the books, sealed secrets and credential hashes. SQLite creates
/// the `-wal` and `-shm` files with the main file's mode, so once the main file is 0600 so is
/// every WAL made after. Returns the files changed; nothing on PostgreSQL or off Unix.
pub async fn restrict_sqlite_files(db: &Db) -> Result<Vec<PathBuf>> {
    if db.backend() != Backend::Sqlite {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("PRAGMA database_list")
        .fetch_all(db.pool())
        .await?;
    let mut changed = Vec::new();
    for r in rows {
        let file: String = r.try_get("file").unwrap_or_default();
        if file.is_empty() {
            continue; // in memory
        }
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{file}{suffix}"));
            if set_owner_only(&path)? {
                changed.push(path);
            }
        }
    }
    Ok(changed)
}

#[cfg(unix)]
fn set_owner_only(path: &std::path::Path) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o777 != 0o600 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| crate::StoreError::Sql(sqlx::Error::Io(e)))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(not(unix))]
fn set_owner_only(_: &std::path::Path) -> Result<bool> {
    Ok(false)
}
