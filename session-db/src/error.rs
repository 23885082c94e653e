//! [`DbError`]: a driver error that names the server it came from, and reads once in a chain.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use session_core::StoreError;

/// The error a store puts as the source of [`StoreError::Backend`] when sqlx fails: it names
/// the engine and the server (`host:port`, a Unix socket or a SQLite file; never the user or
/// password), and says how long the store waited when no connection came in time.
///
/// Its own text never repeats its source's, and its source is sqlx's error printed once (sqlx
/// writes its cause into its own message, so that cause is not listed again), so
/// [`session_core::error_chain`] reads, for a PostgreSQL server that is down:
///
/// ```text
/// session store backend failed: loading a session row: PostgreSQL at 127.0.0.1:5432:
/// no connection within 5s: pool timed out while waiting for an open connection
/// ```
///
/// The driver's error itself is [`driver`](Self::driver).
#[derive(Debug)]
pub struct DbError {
    server: DbServer,
    waited: Option<Duration>,
    driver: Driver,
}

impl DbError {
    /// The engine: `PostgreSQL`, `MySQL` or `SQLite`.
    pub fn engine(&self) -> &'static str {
        self.server.engine
    }

    /// Where the server is (`host:port`, a socket path or a database file), or `None` when
    /// the URL did not parse.
    pub fn server(&self) -> Option<&str> {
        self.server.address.as_deref()
    }

    /// Whether no connection came within the store's bound (the server is down, unreachable
    /// or too slow, or every pooled connection stayed busy).
    pub fn timed_out(&self) -> bool {
        self.waited.is_some()
    }

    /// sqlx's error.
    pub fn driver(&self) -> &sqlx::Error {
        &self.driver.0
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server.address {
            Some(address) => write!(f, "{} at {address}", self.server.engine)?,
            None => write!(f, "invalid {} URL", self.server.engine)?,
        }
        if let Some(waited) = self.waited {
            write!(f, ": no connection within {waited:?}")?;
        }
        Ok(())
    }
}

impl StdError for DbError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.driver)
    }
}

/// sqlx's error, shown once: sqlx's messages already end with their cause's text
/// (`error communicating with database: Connection refused`), so the chain goes on from the
/// cause's own source.
#[derive(Debug)]
struct Driver(sqlx::Error);

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for Driver {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source().and_then(StdError::source)
    }
}

/// Which engine and server a store talks to, for its errors: it turns sqlx's errors into
/// [`StoreError::Backend`] with a [`DbError`] source. Public so that engines on sqlx outside
/// this crate (`session-django`'s) name their servers the same way. Holds no credentials.
#[derive(Debug, Clone)]
pub struct DbServer {
    engine: &'static str,
    address: Option<Arc<str>>,
}

impl DbServer {
    /// A TCP server, or a Unix socket when `socket` is set.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn new(
        engine: &'static str,
        host: &str,
        port: u16,
        socket: Option<&std::path::Path>,
    ) -> Self {
        let address = match socket {
            Some(socket) => socket.display().to_string(),
            None if host.contains(':') => format!("[{host}]:{port}"),
            None => format!("{host}:{port}"),
        };
        Self {
            engine,
            address: Some(address.into()),
        }
    }

    /// A database file (SQLite).
    #[cfg(feature = "sqlite")]
    pub(crate) fn file(engine: &'static str, path: &std::path::Path) -> Self {
        Self {
            engine,
            address: Some(path.display().to_string().into()),
        }
    }

    /// The PostgreSQL server these options reach.
    #[cfg(feature = "postgres")]
    pub fn postgres(options: &sqlx::postgres::PgConnectOptions) -> Self {
        let socket = options
            .get_socket()
            .map(|dir| dir.join(format!(".s.PGSQL.{}", options.get_port())));
        Self::new(
            crate::postgres::ENGINE,
            options.get_host(),
            options.get_port(),
            socket.as_deref(),
        )
    }

    /// The MySQL or MariaDB server these options reach.
    #[cfg(feature = "mysql")]
    pub fn mysql(options: &sqlx::mysql::MySqlConnectOptions) -> Self {
        Self::new(
            crate::mysql::ENGINE,
            options.get_host(),
            options.get_port(),
            options.get_socket().map(|path| path.as_path()),
        )
    }

    /// The SQLite database file these options open.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(options: &sqlx::sqlite::SqliteConnectOptions) -> Self {
        Self::file(crate::sqlite::ENGINE, options.get_filename())
    }

    /// Wraps `error` as a [`StoreError::Backend`] with `context`; `bound` is how long the
    /// store waited for a connection, reported if that is what failed.
    pub fn error(&self, context: &'static str, bound: Duration, error: sqlx::Error) -> StoreError {
        let waited = matches!(error, sqlx::Error::PoolTimedOut).then_some(bound);
        StoreError::backend(
            context,
            DbError {
                server: self.clone(),
                waited,
                driver: Driver(error),
            },
        )
    }

    /// [`error`](Self::error) as a closure, for `map_err`.
    pub fn fail(
        &self,
        context: &'static str,
        bound: Duration,
    ) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |error| self.error(context, bound, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn the_chain_names_the_server_once_and_the_driver_once() {
        let server = DbServer::new("PostgreSQL", "127.0.0.1", 5432, None);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = server.error("loading a session row", Duration::from_secs(5), io.into());
        assert_eq!(
            session_core::error_chain(&error),
            "session store backend failed: loading a session row: PostgreSQL at \
             127.0.0.1:5432: error communicating with database: refused"
        );
        let error = server.error(
            "loading a session row",
            Duration::from_secs(5),
            sqlx::Error::PoolTimedOut,
        );
        assert_eq!(
            session_core::error_chain(&error),
            "session store backend failed: loading a session row: PostgreSQL at \
             127.0.0.1:5432: no connection within 5s: pool timed out while waiting for an \
             open connection"
        );
        let StoreError::Backend { source, .. } = &error else {
            panic!("a backend error")
        };
        let db = source.downcast_ref::<DbError>().expect("a DbError");
        assert!(db.timed_out());
        assert_eq!(db.server(), Some("127.0.0.1:5432"));
        assert!(matches!(db.driver(), sqlx::Error::PoolTimedOut));
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn ipv6_hosts_are_bracketed() {
        let server = DbServer::new("MySQL", "::1", 3306, None);
        let error = server.error("x", Duration::ZERO, sqlx::Error::PoolClosed);
        assert!(session_core::error_chain(&error).contains("MySQL at [::1]:3306"));
    }
}
