//! The statement plan: every statement a SQL store runs, written once with the text of each
//! dialect side by side, and the schema with its in-place upgrade.
//!
//! ## The coarse expiry
//!
//! A session table has two expiry columns: `expires_at`, exact to the millisecond, which
//! decides whether a record is live, and `expires_hour`, the hour it falls in (Unix
//! milliseconds divided by 3,600,000, rounded down), which only the expiry index holds.
//! A sliding expiry moves `expires_at` on every save, but `expires_hour` about once an hour,
//! so most saves leave the index alone: PostgreSQL can update the row in place (a HOT update,
//! which writes no index entry), InnoDB skips the unchanged secondary index, and SQLite, which
//! rewrites an index entry whenever its column is assigned, runs a first `UPDATE` that does
//! not assign it. `clear_expired` still finds expired rows by the index
//! (`expires_hour <= hour(now) AND expires_at <= now`), reading at most one hour's worth of
//! rows that are not expired yet.
//!
//! The hour only steers the cleanup, never what a load returns: a row whose hour is too low
//! (0, as rows written by an older version of this crate during a rolling upgrade get by the
//! column's default) is looked at by every cleanup until it expires or is saved again.
//!
//! ## Bind order
//!
//! Placeholders appear in bind order, so one order serves `$n` (PostgreSQL), `?n` (SQLite) and
//! `?` (MySQL); each statement's doc gives it.

use session_core::record::unix_millis;
use session_core::time::OffsetDateTime;
use sqlx::SqlStr;

use crate::table;

/// Milliseconds in one step of `expires_hour`.
pub(crate) const HOUR_MILLIS: i64 = 3_600_000;

/// The `expires_hour` of an expiry: its hour since the Unix epoch, rounded down.
pub(crate) fn expiry_hour(expires_at: OffsetDateTime) -> i64 {
    unix_millis(expires_at).div_euclid(HOUR_MILLIS)
}

/// The SQL dialects, for the few places where their texts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// The `n`-th placeholder (from 1).
    fn param(self, n: u8) -> String {
        match self {
            Self::Postgres => format!("${n}"),
            Self::MySql => "?".to_owned(),
            Self::Sqlite => format!("?{n}"),
        }
    }

    /// The `n`-th placeholder compared with the `id` column. PostgreSQL needs the cast: a
    /// `text` parameter would cast the `CHAR(64)` column instead and leave the primary key
    /// unused (a sequential scan per request).
    fn id_param(self, n: u8) -> String {
        match self {
            Self::Postgres => format!("${n}::CHAR(64)"),
            _ => self.param(n),
        }
    }

    /// A quoted identifier.
    pub(crate) fn quote(self, identifier: &str) -> String {
        match self {
            Self::MySql => format!("`{identifier}`"),
            Self::Postgres | Self::Sqlite => format!("\"{identifier}\""),
        }
    }
}

/// Every statement of one table in one dialect, built once at construction.
///
/// `owner` and `meta` are the session's owner id and its [`Ownership`]'s JSON
/// (`session_core::Ownership::to_json`), both `NULL` for a session without an owner.
///
/// [`Ownership`]: session_core::Ownership
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Binds `id, now`; returns `payload, expires_at, owner_meta` of the live row.
    pub(crate) load: SqlStr,
    /// Binds `id, payload, expires_at, hour, owner, meta`: a plain insert, as cheap as an
    /// insert gets. On a duplicate id the store runs [`Plan::replace_expired`].
    pub(crate) create: SqlStr,
    /// Binds `payload, expires_at, hour, owner, meta, id, now`: overwrites the row with this
    /// id only if it has expired, so of two creates racing over one leftover only one matches.
    pub(crate) replace_expired: SqlStr,
    /// Binds `payload, expires_at, hour, owner, meta, id, now`: the full write of a live row.
    pub(crate) update: SqlStr,
    /// Binds `expires_at, hour, id, now`: moves the expiry of a live row.
    pub(crate) touch: SqlStr,
    /// Binds `expires_at, hour, owner, meta, id, now`: moves the expiry and writes the
    /// ownership of a live row (`OwnerIndex::touch_owned`).
    pub(crate) touch_owned: SqlStr,
    /// Binds `owner, now`; returns `id, expires_at, owner_meta` of the owner's live rows,
    /// found through the owner index.
    pub(crate) list_owned: SqlStr,
    /// Binds `owner, keep` (`''` to keep none). PostgreSQL and SQLite delete the owner's
    /// rows but `keep` and return their ids; MySQL selects those ids `FOR UPDATE` (run in a
    /// transaction before [`Plan::delete_owned_rows`]).
    pub(crate) delete_owned: SqlStr,
    /// MySQL only: binds `owner, keep` and deletes the rows `delete_owned` locked.
    pub(crate) delete_owned_rows: Option<SqlStr>,
    /// Binds `id, now`. PostgreSQL and SQLite return whether the deleted row was live; MySQL
    /// deletes only a live row and its row count says whether there was one.
    pub(crate) delete: SqlStr,
    /// One batch of `clear_expired`, found through the expiry index. PostgreSQL and SQLite
    /// bind `hour(now), now, limit` and delete up to `limit` expired rows. MySQL binds
    /// `hour(now), now, hour, hour, id, limit` and selects the `(expires_hour, id)` of up to
    /// `limit` expired rows after the given key, in index order (InnoDB's secondary index
    /// holds the primary key); the store deletes them by id.
    pub(crate) clear: SqlStr,
    /// SQLite only: the writes that leave the hour alone.
    pub(crate) same_hour: Option<SameHour>,
}

/// [`Plan::update`] and [`Plan::touch`] without assigning `expires_hour` (or `owner`), for
/// SQLite, which rewrites an index entry whenever its column is assigned, even to the same
/// value. Each matches no row when the hour (or the owner) moved; the store then runs the
/// full statement.
#[derive(Debug, Clone)]
pub(crate) struct SameHour {
    /// Binds as [`Plan::update`].
    pub(crate) update: SqlStr,
    /// Binds as [`Plan::touch`].
    pub(crate) touch: SqlStr,
}

impl Plan {
    /// The plan of `table` (already quoted and qualified).
    pub(crate) fn new(dialect: Dialect, t: &str) -> Self {
        use Dialect::{MySql, Postgres, Sqlite};
        let p = |n| dialect.param(n);
        let id = |n| dialect.id_param(n);
        let s = table::statement;
        let delete = match dialect {
            Postgres | Sqlite => format!(
                "DELETE FROM {t} WHERE id = {} RETURNING expires_at > {}",
                id(1),
                p(2)
            ),
            MySql => format!("DELETE FROM {t} WHERE id = ? AND expires_at > ?"),
        };
        // `ORDER BY expires_hour` makes the index the cheap plan even when the planner
        // expects matches all over the table (then a sequential scan that stops at the limit
        // looks cheaper, and the last batch, which finds fewer, reads the whole table).
        let clear = match dialect {
            Postgres => format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} \
                 WHERE expires_hour <= $1 AND expires_at <= $2 ORDER BY expires_hour LIMIT $3)"
            ),
            Sqlite => format!(
                "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} \
                 WHERE expires_hour <= ?1 AND expires_at <= ?2 ORDER BY expires_hour LIMIT ?3)"
            ),
            MySql => format!(
                "SELECT expires_hour, CAST(id AS CHAR) FROM {t} \
                 WHERE expires_hour <= ? AND expires_at <= ? \
                 AND (expires_hour > ? OR (expires_hour = ? AND id > ?)) \
                 ORDER BY expires_hour, id LIMIT ?"
            ),
        };
        let same_hour = (dialect == Sqlite).then(|| SameHour {
            update: s(format!(
                "UPDATE {t} SET payload = ?1, expires_at = ?2, owner_meta = ?5 \
                 WHERE id = ?6 AND expires_at > ?7 AND expires_hour = ?3 AND owner IS ?4"
            )),
            touch: s(format!(
                "UPDATE {t} SET expires_at = ?1 WHERE id = ?3 AND expires_at > ?4 \
                 AND expires_hour = ?2"
            )),
        });
        let full_write = |live: &str| {
            s(format!(
                "UPDATE {t} SET payload = {}, expires_at = {}, expires_hour = {}, owner = {}, \
                 owner_meta = {} WHERE id = {} AND expires_at {live} {}",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                id(6),
                p(7)
            ))
        };
        let (delete_owned, delete_owned_rows) = match dialect {
            Postgres => (
                format!("DELETE FROM {t} WHERE owner = $1 AND id <> $2::CHAR(64) RETURNING id"),
                None,
            ),
            Sqlite => (
                format!("DELETE FROM {t} WHERE owner = ?1 AND id <> ?2 RETURNING id"),
                None,
            ),
            MySql => (
                format!("SELECT CAST(id AS CHAR) FROM {t} WHERE owner = ? AND id <> ? FOR UPDATE"),
                Some(s(format!("DELETE FROM {t} WHERE owner = ? AND id <> ?"))),
            ),
        };
        let id_text = match dialect {
            MySql => "CAST(id AS CHAR)",
            Postgres | Sqlite => "id",
        };
        Self {
            load: s(format!(
                "SELECT payload, expires_at, owner_meta FROM {t} WHERE id = {} AND expires_at > {}",
                id(1),
                p(2)
            )),
            create: s(format!(
                "INSERT INTO {t} (id, payload, expires_at, expires_hour, owner, owner_meta) \
                 VALUES ({}, {}, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6)
            )),
            replace_expired: full_write("<="),
            update: full_write(">"),
            touch_owned: s(format!(
                "UPDATE {t} SET expires_at = {}, expires_hour = {}, owner = {}, owner_meta = {} \
                 WHERE id = {} AND expires_at > {}",
                p(1),
                p(2),
                p(3),
                p(4),
                id(5),
                p(6)
            )),
            list_owned: s(format!(
                "SELECT {id_text}, expires_at, owner_meta FROM {t} \
                 WHERE owner = {} AND expires_at > {}",
                p(1),
                p(2)
            )),
            delete_owned: s(delete_owned),
            delete_owned_rows,
            touch: s(format!(
                "UPDATE {t} SET expires_at = {}, expires_hour = {} \
                 WHERE id = {} AND expires_at > {}",
                p(1),
                p(2),
                id(3),
                p(4)
            )),
            delete: s(delete),
            clear: s(clear),
            same_hour,
        }
    }
}

/// The schema of a session table in each dialect: what `migrate()` creates, and how it
/// upgrades a table created before the coarse expiry (`expires_at` indexed directly).
pub(crate) struct Schema {
    dialect: Dialect,
    /// The quoted, qualified table.
    table: String,
    /// The quoted expiry index.
    index: String,
    /// The quoted index of the tables of earlier versions.
    old_index: String,
    /// The quoted owner index.
    owner_index: String,
}

impl Schema {
    /// The schema of `table` (unquoted) at `qualified` (quoted, with its schema if any).
    pub(crate) fn new(dialect: Dialect, table: &str, qualified: String) -> Self {
        Self {
            dialect,
            table: qualified,
            index: dialect.quote(&table::index_name(table)),
            old_index: dialect.quote(&table::old_index_name(table)),
            owner_index: dialect.quote(&table::owner_index_name(table)),
        }
    }

    /// The DDL `migrate()` runs, given what it found under its lock: the table with its
    /// indexes when there is no table; else the [upgrade](Self::upgrade) when the table has
    /// no `expires_hour`, the [owner columns](Self::add_owner) when it has no `owner`, and
    /// any missing index put back (PostgreSQL and SQLite).
    pub(crate) fn migration(
        &self,
        exists: bool,
        has_hour: bool,
        has_owner: bool,
        unlogged: bool,
    ) -> Vec<String> {
        let separate_index = self.dialect != Dialect::MySql;
        if !exists {
            let mut statements = vec![self.create_table(unlogged)];
            if separate_index {
                statements.extend([self.create_index(), self.create_owner_index()]);
            }
            return statements;
        }
        let mut statements = Vec::new();
        if !has_hour {
            tracing::info!(table = %self.table, "upgrading the session table: adding expires_hour");
            statements.extend(self.upgrade());
        } else if separate_index {
            statements.push(self.create_index());
        }
        if !has_owner {
            tracing::info!(table = %self.table, "upgrading the session table: adding owner");
            statements.extend(self.add_owner());
        } else if separate_index {
            statements.push(self.create_owner_index());
        }
        statements
    }

    /// The owner index (PostgreSQL and SQLite: partial, only rows with an owner).
    pub(crate) fn create_owner_index(&self) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} (owner) WHERE owner IS NOT NULL",
            self.owner_index, self.table
        )
    }

    /// The statements that add the owner columns and their index to a table of an earlier
    /// version, in place: both columns are nullable with no default, so existing rows (and
    /// an older version still writing during a rolling upgrade) keep working as sessions
    /// without an owner. Run only when `owner` is missing, under the migration lock.
    pub(crate) fn add_owner(&self) -> Vec<String> {
        let Self {
            table: t,
            owner_index,
            ..
        } = self;
        match self.dialect {
            Dialect::Postgres => vec![
                format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS owner VARCHAR(128)"),
                format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS owner_meta TEXT"),
                self.create_owner_index(),
            ],
            Dialect::MySql => vec![format!(
                "ALTER TABLE {t} \
                 ADD COLUMN owner VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
                 ADD COLUMN owner_meta TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
                 ADD INDEX {owner_index} (owner)"
            )],
            Dialect::Sqlite => vec![
                format!("ALTER TABLE {t} ADD COLUMN owner TEXT"),
                format!("ALTER TABLE {t} ADD COLUMN owner_meta TEXT"),
                self.create_owner_index(),
            ],
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` with the expiry index (MySQL declares it inline;
    /// PostgreSQL leaves a tenth of each page free, room for in-place updates).
    pub(crate) fn create_table(&self, unlogged: bool) -> String {
        let Self {
            table: t,
            index,
            owner_index,
            ..
        } = self;
        match self.dialect {
            Dialect::Postgres => {
                let unlogged = if unlogged { "UNLOGGED " } else { "" };
                format!(
                    "CREATE {unlogged}TABLE IF NOT EXISTS {t} (id CHAR(64) PRIMARY KEY, \
                     payload TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, \
                     expires_hour BIGINT NOT NULL DEFAULT 0, owner VARCHAR(128), \
                     owner_meta TEXT) WITH (fillfactor = 90)"
                )
            }
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
                 payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 expires_at DATETIME(3) NOT NULL, \
                 expires_hour BIGINT NOT NULL DEFAULT 0, \
                 owner VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
                 owner_meta TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
                 INDEX {index} (expires_hour), INDEX {owner_index} (owner)) ENGINE = InnoDB"
            ),
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY NOT NULL, \
                 payload TEXT NOT NULL, expires_at INTEGER NOT NULL, \
                 expires_hour INTEGER NOT NULL DEFAULT 0, owner TEXT, owner_meta TEXT)"
            ),
        }
    }

    /// `CREATE INDEX IF NOT EXISTS` on `expires_hour` (PostgreSQL and SQLite; MySQL's is in
    /// the table, or added by [`Schema::upgrade`]).
    pub(crate) fn create_index(&self) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} (expires_hour)",
            self.index, self.table
        )
    }

    /// The statements that upgrade a table of an earlier version in place, in order: add
    /// `expires_hour` (default 0, so rows an older version still writes stay valid), index
    /// it, fill it from `expires_at`, drop the old `expires_at` index if there is one (MySQL:
    /// [`drop_old_index`](Self::drop_old_index), separately). Run only when the column is
    /// missing, under the migration lock.
    pub(crate) fn upgrade(&self) -> Vec<String> {
        let Self {
            table: t,
            index,
            old_index,
            ..
        } = self;
        let h = HOUR_MILLIS;
        match self.dialect {
            Dialect::Postgres => vec![
                format!(
                    "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS expires_hour BIGINT NOT NULL DEFAULT 0"
                ),
                self.create_index(),
                format!(
                    "UPDATE {t} SET expires_hour = \
                     floor(extract(epoch FROM expires_at) * 1000 / {h})::BIGINT"
                ),
                format!("DROP INDEX IF EXISTS {}", self.qualified_old_index()),
                format!("ALTER TABLE {t} SET (fillfactor = 90)"),
            ],
            Dialect::MySql => vec![
                format!(
                    "ALTER TABLE {t} ADD COLUMN expires_hour BIGINT NOT NULL DEFAULT 0, \
                     ADD INDEX {index} (expires_hour)"
                ),
                format!(
                    "UPDATE {t} SET expires_hour = \
                     FLOOR(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', expires_at) / {})",
                    h * 1000
                ),
                // MySQL has no `DROP INDEX IF EXISTS`: see `drop_old_index`.
            ],
            Dialect::Sqlite => vec![
                format!("ALTER TABLE {t} ADD COLUMN expires_hour INTEGER NOT NULL DEFAULT 0"),
                self.create_index(),
                // Integer division rounds toward zero: before 1970 the hour is one too high,
                // which no cleanup after 1970 can tell apart.
                format!("UPDATE {t} SET expires_hour = expires_at / {h}"),
                format!("DROP INDEX IF EXISTS {old_index}"),
            ],
        }
    }

    /// MySQL: drops the old `expires_at` index, which `migrate()` runs after the upgrade only
    /// when `information_schema` lists it (MySQL has no `DROP INDEX IF EXISTS`).
    pub(crate) fn drop_old_index(&self) -> String {
        format!("ALTER TABLE {} DROP INDEX {}", self.table, self.old_index)
    }

    /// PostgreSQL indexes live in their table's schema: the old index, qualified like it.
    fn qualified_old_index(&self) -> String {
        match self.table.rsplit_once('.') {
            Some((schema, _)) => format!("{schema}.{}", self.old_index),
            None => self.old_index.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::time::macros::datetime;

    #[test]
    fn the_hour_rounds_down_on_both_sides_of_the_epoch() {
        assert_eq!(expiry_hour(datetime!(1970-01-01 00:00 UTC)), 0);
        assert_eq!(expiry_hour(datetime!(1970-01-01 00:59:59.999 UTC)), 0);
        assert_eq!(expiry_hour(datetime!(1970-01-01 01:00 UTC)), 1);
        assert_eq!(expiry_hour(datetime!(1969-12-31 23:59:59.999 UTC)), -1);
    }

    #[test]
    fn placeholders_appear_in_bind_order() {
        let mysql = Plan::new(Dialect::MySql, "`t`");
        assert_eq!(
            mysql.update.as_str(),
            "UPDATE `t` SET payload = ?, expires_at = ?, expires_hour = ?, owner = ?, \
             owner_meta = ? WHERE id = ? AND expires_at > ?"
        );
        let postgres = Plan::new(Dialect::Postgres, "\"t\"");
        assert!(
            postgres
                .touch
                .as_str()
                .contains("id = $3::CHAR(64) AND expires_at > $4")
        );
    }
}
