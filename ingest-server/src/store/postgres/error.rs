//! How the PostgreSQL store fails, and which of those failures are worth retrying.

use crate::store::StoreError;

/// Why the PostgreSQL store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// PostgreSQL failed, or could not be reached (connecting, a broken connection, I/O).
    #[error("analytics database: {0}")]
    Postgres(#[from] postgres::Error),
    /// The store URL is unusable, or a connection was used after it went back to the pool.
    #[error("analytics database configuration: {0}")]
    Config(String),
    /// The connection pool's lock was poisoned by a panic in another thread.
    #[error("analytics storage lock poisoned")]
    Poisoned,
    /// Other consumers kept changing what this transaction was locking (identities merged
    /// again and again while it read them): a lost race, retried like a deadlock.
    #[error("analytics database: {0}")]
    Contended(&'static str),
}

/// SQLSTATE classes after which the same work can succeed later: 08 connection exception,
/// 40 transaction rollback (serialization failure, deadlock), 53 insufficient resources,
/// 57 operator intervention (shutdown, cancel).
const TRANSIENT_CLASSES: [&str; 4] = ["08", "40", "53", "57"];

/// SQLSTATEs of a lost race, worth retrying at once: serialization failure, deadlock (also
/// raised by the consumer's own try-locks on share codes and persons, see `tx.rs`).
const CONFLICTS: [&str; 2] = ["40001", "40P01"];

impl PgError {
    /// Whether retrying later can succeed: no SQLSTATE (connecting failed, the connection
    /// broke, or I/O failed) or one of [`TRANSIENT_CLASSES`]. Configuration and other errors
    /// are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            PgError::Postgres(e) => match e.code() {
                None => true,
                Some(code) => TRANSIENT_CLASSES.iter().any(|class| code.code().starts_with(class)),
            },
            PgError::Contended(_) => true,
            PgError::Config(_) | PgError::Poisoned => false,
        }
    }

    /// Whether the transaction lost a serialization race or a deadlock ([`CONFLICTS`]): retry
    /// at once. Every conflict is also [`PgError::is_transient`].
    pub fn is_conflict(&self) -> bool {
        match self {
            PgError::Postgres(e) => e.code().is_some_and(|c| CONFLICTS.contains(&c.code())),
            PgError::Contended(_) => true,
            PgError::Config(_) | PgError::Poisoned => false,
        }
    }

    /// A [`PgError::Config`].
    pub(super) fn config(message: impl Into<String>) -> StoreError {
        PgError::Config(message.into()).into()
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Postgres(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_transient_configuration_is_not() {
        let refused = postgres::Config::new()
            .host("127.0.0.1")
            .port(1)
            .user("postgres")
            .connect_timeout(std::time::Duration::from_secs(2))
            .connect(postgres::NoTls)
            .err()
            .expect("nothing listens on port 1");
        let refused = PgError::Postgres(refused);
        assert!(refused.is_transient() && !refused.is_conflict());
        assert!(!PgError::Config("bad url".into()).is_transient());
        assert!(!PgError::Poisoned.is_transient());
    }

    /// SQLSTATEs raised by the local PostgreSQL (`scripts/services.sh`); skipped without it
    /// unless `CI=true`.
    #[test]
    fn sqlstate_classes_decide() {
        let admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5";
        let mut client = match postgres::Client::connect(admin, postgres::NoTls) {
            Ok(c) => c,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("PostgreSQL (127.0.0.1:5432) not reachable under CI=true: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL not reachable ({e}); run `bash scripts/services.sh`");
                return;
            }
        };
        for (code, transient, conflict) in [
            ("40001", true, true),
            ("40P01", true, true),
            ("40002", true, false),
            ("08006", true, false),
            ("53100", true, false),
            ("57014", true, false),
            ("23505", false, false),
            ("22P02", false, false),
        ] {
            let sql = format!("DO $$BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{code}'; END$$");
            let e = PgError::Postgres(client.batch_execute(&sql).unwrap_err());
            assert_eq!((e.is_transient(), e.is_conflict()), (transient, conflict), "{code}");
            let e = StoreError::Postgres(e);
            assert_eq!((e.is_transient(), e.is_conflict(), e.is_disk_full()), (transient, conflict, false));
        }
    }
}
