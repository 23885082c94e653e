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
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Binds `id, now`; returns `payload, expires_at` of the live row.
    pub(crate) load: SqlStr,
    /// Binds `id, payload, expires_at, hour`: a plain insert, as cheap as an insert gets. On
    /// a duplicate id the store runs [`Plan::replace_expired`].
    pub(crate) create: SqlStr,
    /// Binds `payload, expires_at, hour, id, now`: overwrites the row with this id only if it
    /// has expired, so of two creates racing over one leftover only one matches.
    pub(crate) replace_expired: SqlStr,
    /// Binds `payload, expires_at, hour, id, now`: the full write of a live row.
    pub(crate) update: SqlStr,
    /// Binds `expires_at, hour, id, now`: moves the expiry of a live row.
    pub(crate) touch: SqlStr,
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

/// [`Plan::update`] and [`Plan::touch`] without assigning `expires_hour`, for SQLite, which
/// rewrites an index entry whenever its column is assigned, even to the same value. Each
/// matches no row when the hour moved; the store then runs the full statement.
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
                "UPDATE {t} SET payload = ?1, expires_at = ?2 \
                 WHERE id = ?4 AND expires_at > ?5 AND expires_hour = ?3"
            )),
            touch: s(format!(
                "UPDATE {t} SET expires_at = ?1 WHERE id = ?3 AND expires_at > ?4 \
                 AND expires_hour = ?2"
            )),
        });
        Self {
            load: s(format!(
                "SELECT payload, expires_at FROM {t} WHERE id = {} AND expires_at > {}",
                id(1),
                p(2)
            )),
            create: s(format!(
                "INSERT INTO {t} (id, payload, expires_at, expires_hour) VALUES ({}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4)
            )),
            replace_expired: s(format!(
                "UPDATE {t} SET payload = {}, expires_at = {}, expires_hour = {} \
                 WHERE id = {} AND expires_at <= {}",
                p(1),
                p(2),
                p(3),
                id(4),
                p(5)
            )),
            update: s(format!(
                "UPDATE {t} SET payload = {}, expires_at = {}, expires_hour = {} \
                 WHERE id = {} AND expires_at > {}",
                p(1),
                p(2),
                p(3),
                id(4),
                p(5)
            )),
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
}

impl Schema {
    /// The schema of `table` (unquoted) at `qualified` (quoted, with its schema if any).
    pub(crate) fn new(dialect: Dialect, table: &str, qualified: String) -> Self {
        Self {
            dialect,
            table: qualified,
            index: dialect.quote(&table::index_name(table)),
            old_index: dialect.quote(&table::old_index_name(table)),
        }
    }

    /// The DDL `migrate()` runs, given what it found under its lock: the table with its
    /// index when there is no table, the [upgrade](Self::upgrade) when the table has no
    /// `expires_hour`, else only a missing index put back (PostgreSQL and SQLite).
    pub(crate) fn migration(&self, exists: bool, has_hour: bool, unlogged: bool) -> Vec<String> {
        let separate_index = self.dialect != Dialect::MySql;
        if !exists {
            let mut statements = vec![self.create_table(unlogged)];
            statements.extend(separate_index.then(|| self.create_index()));
            statements
        } else if !has_hour {
            tracing::info!(table = %self.table, "upgrading the session table: adding expires_hour");
            self.upgrade()
        } else {
            separate_index
                .then(|| self.create_index())
                .into_iter()
                .collect()
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` with the expiry index (MySQL declares it inline;
    /// PostgreSQL leaves a tenth of each page free, room for in-place updates).
    pub(crate) fn create_table(&self, unlogged: bool) -> String {
        let Self {
            table: t, index, ..
        } = self;
        match self.dialect {
            Dialect::Postgres => {
                let unlogged = if unlogged { "UNLOGGED " } else { "" };
                format!(
                    "CREATE {unlogged}TABLE IF NOT EXISTS {t} (id CHAR(64) PRIMARY KEY, \
                     payload TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, \
                     expires_hour BIGINT NOT NULL DEFAULT 0) WITH (fillfactor = 90)"
                )
            }
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
                 payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 expires_at DATETIME(3) NOT NULL, \
                 expires_hour BIGINT NOT NULL DEFAULT 0, \
                 INDEX {index} (expires_hour)) ENGINE = InnoDB"
            ),
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY NOT NULL, \
                 payload TEXT NOT NULL, expires_at INTEGER NOT NULL, \
                 expires_hour INTEGER NOT NULL DEFAULT 0)"
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
            "UPDATE `t` SET payload = ?, expires_at = ?, expires_hour = ? \
             WHERE id = ? AND expires_at > ?"
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
