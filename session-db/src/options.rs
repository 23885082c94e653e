//! [`StoreOptions`]: how long a SQL store waits for its server.

use std::time::Duration;

use session_core::StoreError;
use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database, Pool};

use crate::error::DbServer;

/// How long a SQL store waits for its server, so a database that is down makes requests fail
/// in seconds instead of hanging (sqlx's own default wait is 30 s). Every store's `connect`
/// uses [`StoreOptions::default()`]; `connect_with(url, options)` takes others:
///
/// | bound | default | bounds |
/// |---|---|---|
/// | [`connect_timeout`](Self::connect_timeout) | 5 s | `connect`/`connect_with`: until the first connection is open (retrying while the server refuses) |
/// | [`acquire_timeout`](Self::acquire_timeout) | 5 s | every operation's wait for a pooled connection: a free slot, checking a connection idle for over 100 ms (a ping, so a dead pooled connection is noticed and replaced) and opening a new one |
///
/// An operation over its bound fails with [`StoreError::Backend`] whose source is a
/// [`DbError`](crate::DbError) naming the server (`host:port`, never the password). The
/// same store recovers by itself once the server is back: each operation connects anew.
///
/// ```
/// use std::time::Duration;
/// use session_db::StoreOptions;
///
/// // Wait up to 30 s at start-up for a database that starts with the application, but
/// // answer requests with an error after 2 s once running.
/// let options = StoreOptions::new()
///     .connect_timeout(Duration::from_secs(30))
///     .acquire_timeout(Duration::from_secs(2));
/// assert_eq!(options.get_acquire_timeout(), Duration::from_secs(2));
/// // let store = session_db::PostgresStore::connect_with(url, options).await?;
/// ```
///
/// Not bounded here: a statement that has already started on a live connection when its
/// server stops answering without closing the connection (a frozen host, a cable pulled);
/// use the server's own limits (PostgreSQL `statement_timeout`, MySQL `max_execution_time`,
/// MariaDB `max_statement_time`) and TCP keepalives for that. A server that stopped or
/// crashed closes its connections, and the next operation notices at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    connect_timeout: Duration,
    acquire_timeout: Duration,
}

impl StoreOptions {
    /// The default [`connect_timeout`](Self::connect_timeout): 5 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default [`acquire_timeout`](Self::acquire_timeout): 5 s.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    /// How long a pooled connection may sit idle before it is pinged on its next use.
    pub const IDLE_CHECK_AFTER: Duration = Duration::from_millis(100);

    /// The defaults: 5 s to connect, 5 s to acquire a connection.
    pub const fn new() -> Self {
        Self {
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
        }
    }

    /// How long `connect`/`connect_with` waits for the first connection before failing. It
    /// retries while the server refuses (one that is still starting); an error the server
    /// answers with (a wrong password, an unknown database) fails at once.
    pub const fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long each operation waits for a connection from the pool before failing: the
    /// pool's [`PoolOptions::acquire_timeout`], which also bounds checking an idle connection
    /// and opening a new one.
    pub const fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The connect timeout.
    pub const fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The acquire timeout.
    pub const fn get_acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// sqlx pool options with these bounds, for a pool you build yourself and hand to a
    /// store's `new(pool)`, e.g. with an `after_connect` hook. sqlx's `PoolOptions::connect`
    /// is then bounded by the acquire timeout.
    ///
    /// A connection that sat idle for more than [`IDLE_CHECK_AFTER`](Self::IDLE_CHECK_AFTER)
    /// (100 ms) is pinged before use, and replaced if the server is gone; one in steady use
    /// is not. sqlx's default pings before every use, a round trip on top of each statement
    /// (sqlx also pings each connection as it goes back to the pool, so one that broke during
    /// a statement never returns to it).
    ///
    /// ```no_run
    /// use session_db::{PostgresStore, StoreOptions};
    ///
    /// # async fn run() -> Result<(), sqlx::Error> {
    /// let pool = StoreOptions::new()
    ///     .pool_options::<sqlx::Postgres>()
    ///     .max_connections(20)
    ///     .connect("postgres://postgres@127.0.0.1/app")
    ///     .await?;
    /// let store = PostgresStore::new(pool);
    /// # Ok(()) }
    /// ```
    pub fn pool_options<DB: Database>(&self) -> PoolOptions<DB> {
        PoolOptions::new()
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|connection: &mut DB::Connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > Self::IDLE_CHECK_AFTER {
                        // A dead connection is closed, and the pool hands out another.
                        return Ok(connection.ping().await.is_ok());
                    }
                    Ok(true)
                })
            })
    }

    /// Builds the pool from `pool` (which carries the acquire timeout) and opens its first
    /// connection within the connect timeout.
    pub(crate) async fn open<DB: Database>(
        &self,
        pool: PoolOptions<DB>,
        connect: <DB::Connection as Connection>::Options,
        server: &DbServer,
        context: &'static str,
    ) -> Result<Pool<DB>, StoreError> {
        let pool = pool.connect_lazy_with(connect);
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let first = tokio::time::timeout_at(deadline, async {
            loop {
                match pool.acquire().await {
                    // Dropping it hands it back to the pool, idle.
                    Ok(_connection) => return Ok(()),
                    // Each acquire gives up after the acquire timeout; go on until ours.
                    Err(sqlx::Error::PoolTimedOut) if tokio::time::Instant::now() < deadline => {}
                    Err(error) => return Err(error),
                }
            }
        })
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        match first {
            Ok(()) => Ok(pool),
            Err(error) => {
                pool.close().await;
                Err(server.error(context, self.connect_timeout, error))
            }
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::new()
    }
}
