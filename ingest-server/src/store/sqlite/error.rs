//! How the SQLite store fails, and which of those failures are worth retrying.

use crate::store::StoreError;

/// Why the SQLite store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// SQLite failed (busy, locked, full, corrupt, a constraint, ...).
    #[error("analytics storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file or directory could not be opened or created.
    #[error("analytics storage: {0}")]
    Io(#[from] std::io::Error),
    /// A connection's lock was poisoned by a panic in another thread.
    #[error("analytics storage lock poisoned")]
    Poisoned,
}

impl SqliteError {
    /// Whether retrying later can succeed: another connection holds the database
    /// (`SQLITE_BUSY`, `SQLITE_LOCKED`), or the file system failed. Everything else, a full
    /// disk (`SQLITE_FULL`) included, is not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            SqliteError::Io(_) => true,
            SqliteError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            }
            SqliteError::Sqlite(_) | SqliteError::Poisoned => false,
        }
    }

    /// Whether it is the disk being full (SQLite's `SQLITE_FULL` or `ENOSPC`).
    pub fn is_disk_full(&self) -> bool {
        match self {
            SqliteError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            SqliteError::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            SqliteError::Poisoned => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e.into())
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Sqlite(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> SqliteError {
        SqliteError::Sqlite(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    #[test]
    fn busy_and_locked_are_transient_a_full_disk_is_not() {
        assert!(failure(rusqlite::ffi::SQLITE_BUSY).is_transient());
        assert!(failure(rusqlite::ffi::SQLITE_LOCKED).is_transient());
        let full = failure(rusqlite::ffi::SQLITE_FULL);
        assert!(!full.is_transient());
        assert!(full.is_disk_full());
        assert!(!failure(rusqlite::ffi::SQLITE_CONSTRAINT).is_transient());
        assert!(!SqliteError::Poisoned.is_transient());
        let enospc = SqliteError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(enospc.is_transient() && enospc.is_disk_full());
        assert!(StoreError::from(failure(rusqlite::ffi::SQLITE_BUSY)).is_transient());
        assert!(!StoreError::Timeout.is_transient());
    }
}
