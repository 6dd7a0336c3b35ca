//! The dashboard-link statements (`share_links`), one text for both backends: written with
//! SQLite's numbered parameters (`?1`), which [`sql`] turns into PostgreSQL's (`$1`). Each
//! backend binds the parameters and maps the rows (in [`COLUMNS`] order) with its own client.

use std::borrow::Cow;

use crate::query::Dialect;

/// The columns a link is read from, in [`crate::store::LinkRow`]'s field order.
const COLUMNS: &str = "id, project, conference_id, label, token_hash, created_at, expires_at, revoked_at";

/// Stores a link: `?1`–`?8` in [`COLUMNS`] order.
pub(super) const INSERT: &str = "INSERT INTO share_links (id, project, conference_id, label, token_hash, \
     created_at, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Revokes a link (project `?1`, id `?2`) at `?3`, unless it was revoked already.
pub(super) const REVOKE: &str =
    "UPDATE share_links SET revoked_at = COALESCE(revoked_at, ?3) WHERE project = ?1 AND id = ?2";

/// A project's (`?1`) links, newest first.
pub(super) fn by_project() -> String {
    format!("SELECT {COLUMNS} FROM share_links WHERE project = ?1 ORDER BY created_at DESC, id")
}

/// The link of a token hash (`?1`).
pub(super) fn by_token() -> String {
    format!("SELECT {COLUMNS} FROM share_links WHERE token_hash = ?1")
}

/// `statement` (one of the above) in `dialect`'s parameter syntax.
pub(super) fn sql(statement: &str, dialect: Dialect) -> Cow<'_, str> {
    match dialect {
        Dialect::Sqlite => Cow::Borrowed(statement),
        // The statements hold no `?` but their parameters' (no literals, no operators).
        Dialect::Postgres => Cow::Owned(statement.replace('?', "$")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_statements_number_their_parameters() {
        assert_eq!(
            sql(REVOKE, Dialect::Postgres),
            "UPDATE share_links SET revoked_at = COALESCE(revoked_at, $3) WHERE project = $1 AND id = $2"
        );
        assert_eq!(sql(&by_token(), Dialect::Sqlite), by_token());
        assert!(sql(INSERT, Dialect::Postgres).ends_with("VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"));
    }
}
