//! Table names: validated once, then quoted into the SQL each store builds at construction.

use session_core::StoreError;

/// The default table name.
pub const DEFAULT_TABLE: &str = "sessions";

/// Longest accepted name: the index names (`<table>_expiry_idx`, `<table>_owner_idx`, and
/// `<table>_expires_at_idx` of earlier versions) must fit PostgreSQL's 63-byte identifiers.
const MAX_LEN: usize = 48;

/// Accepts `[A-Za-z_][A-Za-z0-9_]*` of at most 48 characters; anything else is an error
/// before any SQL runs.
pub(crate) fn validate(kind: &str, name: &str) -> Result<(), StoreError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= MAX_LEN
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::config(format!(
            "invalid {kind} name {name:?}: use [A-Za-z_][A-Za-z0-9_]*, at most {MAX_LEN} characters"
        )))
    }
}

/// The expiry index of a table (on `expires_hour`), named after it so two tables never share
/// one.
pub(crate) fn index_name(table: &str) -> String {
    format!("{table}_expiry_idx")
}

/// The owner index of a table (on `owner`).
pub(crate) fn owner_index_name(table: &str) -> String {
    format!("{table}_owner_idx")
}

/// The expiry index of tables created by versions before `expires_hour` (on `expires_at`),
/// which [`migrate`](crate::PostgresStore::migrate) drops when it upgrades them.
pub(crate) fn old_index_name(table: &str) -> String {
    format!("{table}_expires_at_idx")
}

/// How many expired rows one `clear_expired` statement deletes: small enough that no
/// statement holds its locks for long, large enough to clear millions quickly.
pub(crate) const CLEAR_BATCH: i64 = 5_000;

/// A statement built once from validated identifiers, cheap to clone per call.
pub(crate) fn statement(text: String) -> sqlx::SqlStr {
    use sqlx::SqlSafeStr;
    // Safe: built only from constant SQL and table names that passed `validate`, quoted.
    sqlx::AssertSqlSafe(std::sync::Arc::<str>::from(text)).into_sql_str()
}

/// `Ok` when a statement changed a row; `otherwise` when it matched none.
pub(crate) fn changed_a_row(rows: u64, otherwise: StoreError) -> Result<(), StoreError> {
    if rows == 0 { Err(otherwise) } else { Ok(()) }
}

/// Runs a batched delete (one statement deleting up to [`CLEAR_BATCH`] rows) until a batch
/// comes back short; returns how many rows went in all. After each full batch it pauses twice
/// as long as the batch took (at most a second), so requests keep two thirds of the
/// database's time while a large backlog is cleared (deletes write much WAL and redo, which
/// every commit waits behind).
pub(crate) async fn clear_in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let started = tokio::time::Instant::now();
        let deleted = batch().await?;
        total += deleted;
        if deleted < CLEAR_BATCH as u64 {
            return Ok(total);
        }
        pause_after_batch(started).await;
    }
}

/// The pause after a full cleanup batch that began at `started`: twice as long as it took, at
/// most a second.
pub(crate) async fn pause_after_batch(started: tokio::time::Instant) {
    tokio::time::sleep((started.elapsed() * 2).min(std::time::Duration::from_secs(1))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_validated() {
        for good in ["sessions", "_s", "Django_Session2", &"a".repeat(48)] {
            assert!(validate("table", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "x; DROP TABLE y",
            "a-b",
            "a.b",
            "\"x\"",
            "é",
            &"a".repeat(49),
        ] {
            assert!(validate("table", bad).is_err(), "{bad}");
        }
    }
}
