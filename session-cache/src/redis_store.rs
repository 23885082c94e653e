//! `RedisStore`: sessions in Redis, on one server or a Redis Cluster.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, Script};
use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionStore, StoreError};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "session:";

/// The default bound on every operation, reconnect waits included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The `PXAT` of a record's key: one millisecond before its expiry. Redis keeps a key while
/// `now <= PXAT`, so the key lives exactly while `expires_at > now`, the contract's rule, and
/// `SET … NX`, `SET … XX` and `DEL` agree with `load` to the millisecond with no script.
fn pxat(expires_at_ms: i64) -> i64 {
    expires_at_ms.saturating_sub(1)
}

/// `touch`: moves the expiry of a live key, in its value and for Redis (`PXAT` one millisecond
/// earlier, see [`pxat`]), atomically; 0 when there is none.
static TOUCH: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"local value = redis.call('GET', KEYS[1])
        if not value then return 0 end
        local colon = string.find(value, ':', 1, true)
        if not colon then return 0 end
        redis.call('SET', KEYS[1], ARGV[1] .. string.sub(value, colon), 'PXAT', ARGV[2])
        return 1",
    )
});

/// A key's value: `<expiry in Unix ms>:<payload>`, so one `GET` gives the record back.
fn encode(record: &Record) -> String {
    format!("{}:{}", record.expires_at_unix_millis(), record.payload())
}

fn decode(id: &RecordId, value: Vec<u8>) -> Option<Record> {
    let mut value = String::from_utf8(value).ok()?;
    let colon = value.find(':')?;
    let millis = value.get(..colon)?.parse().ok()?;
    // The payload keeps the value's allocation.
    value.drain(..=colon);
    Record::from_unix_millis(id.clone(), value, millis)
}

/// Settings of a [`RedisStore`]: `RedisConfig::new()` (the defaults), then chained setters;
/// checked by [`RedisStore::new`] and [`RedisStore::cluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Prefix of every key (`session:` by default). A `{` is refused: it would start a hash
    /// tag and pin every session to one cluster slot.
    pub prefix: String,
    /// Bound on every operation, reconnect waits included (2 s by default): past it the
    /// operation fails with a `Backend` error instead of hanging the request.
    pub timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl RedisConfig {
    /// The defaults: prefix `session:`, a 2 s bound.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`prefix`](Self::prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Sessions in Redis (7.0 or newer), on one server or, with the `cluster` feature, a Redis
/// Cluster, through the same API. Django's `cache` engine, with Redis doing the expiry.
///
/// Keys are `prefix + record id`; a value is `<expiry in Unix ms>:<payload>`, so one `GET`
/// loads a record with its exact expiry. `create` is `SET … NX PXAT`, `update` is
/// `SET … XX PXAT` (nil: [`StoreError::NotFound`]), `delete` is `DEL`, and `touch` is a small
/// Lua script that moves the expiry in the value and `PXAT` together, atomically. `PXAT` is
/// one millisecond before the record's expiry: Redis keeps a key while `now <= PXAT`, so the
/// key is live exactly while `expires_at > now`, as the contract says, to the millisecond
/// (Redis's clock and the application's must agree, as NTP keeps them). `clear_expired`
/// returns 0: Redis expires keys itself. `KEYS` is never used.
///
/// Connections are multiplexed, made lazily on first use and re-made after failures; every
/// operation is bounded by [`RedisConfig::timeout`] (`tokio::time::timeout` around it: the
/// client's own response timeout does not cover its reconnect waits).
///
/// ```no_run
/// use session_cache::{RedisConfig, RedisStore};
///
/// # async fn run() -> Result<(), session_core::StoreError> {
/// let store = RedisStore::new("redis://127.0.0.1:6379", RedisConfig::default())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    timeout: Duration,
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(cluster::LazyCluster),
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.connection {
            Connection::Single(_) => "single",
            #[cfg(feature = "cluster")]
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("kind", &kind)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn validate(config: &RedisConfig) -> Result<(), StoreError> {
    if config.prefix.contains('{') {
        return Err(StoreError::config(format!(
            "key prefix {:?} contains '{{', which would pin every session to one cluster slot",
            config.prefix
        )));
    }
    if config.timeout.is_zero() {
        return Err(StoreError::config(
            "the Redis store's operation timeout must be above zero",
        ));
    }
    Ok(())
}

impl RedisStore {
    /// A store on the Redis server at `url` (`redis://host:port/db`). Synchronous: no
    /// connection is made until the first operation, which also reconnects after failures.
    /// Call it inside a tokio runtime. Only a URL or settings that cannot work are errors
    /// ([`StoreError::Config`]).
    pub fn new(url: &str, config: RedisConfig) -> Result<Self, StoreError> {
        validate(&config)?;
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::config_caused_by("the Redis URL is not valid (redis://host:port/db)", e)
        })?;
        let err = |e: RedisError| StoreError::backend("connecting to Redis", e);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_max_delay(config.timeout / 4);
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(err)?;
        Ok(Self {
            connection: Connection::Single(manager),
            prefix: config.prefix,
            timeout: config.timeout,
        })
    }

    /// The old name of [`new`](Self::new), kept for one release: it never connected.
    #[deprecated(since = "0.2.0", note = "renamed to `new`: it connects nothing")]
    #[doc(hidden)]
    pub fn connect(url: &str, config: RedisConfig) -> Result<Self, StoreError> {
        Self::new(url, config)
    }

    /// A store on the Redis Cluster reachable through any of `urls`. No connection is made
    /// until the first operation; the topology is discovered then and followed afterwards.
    #[cfg(feature = "cluster")]
    pub fn cluster<I, S>(urls: I, config: RedisConfig) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        validate(&config)?;
        let cluster = cluster::LazyCluster::new(urls, config.timeout)?;
        Ok(Self {
            connection: Connection::Cluster(cluster),
            prefix: config.prefix,
            timeout: config.timeout,
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, id: &RecordId) -> String {
        format!("{}{}", self.prefix, id.as_str())
    }

    /// Runs `work` under the operation timeout.
    async fn bounded<T, F>(&self, context: &'static str, work: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::backend(context, error)),
            Err(elapsed) => Err(StoreError::backend(context, elapsed)),
        }
    }

    async fn query<T: FromRedisValue>(
        &self,
        context: &'static str,
        cmd: Cmd,
    ) -> Result<T, StoreError> {
        self.bounded(context, async {
            match &self.connection {
                Connection::Single(manager) => cmd.query_async(&mut manager.clone()).await,
                #[cfg(feature = "cluster")]
                Connection::Cluster(cluster) => cmd.query_async(&mut cluster.get().await?).await,
            }
        })
        .await
    }

    /// `SET key value <condition> PXAT <expiry - 1 ms>`, true when Redis answered `OK`.
    async fn set(
        &self,
        context: &'static str,
        record: &Record,
        condition: &str,
    ) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(record.id()))
            .arg(encode(record))
            .arg(condition)
            .arg("PXAT")
            .arg(pxat(record.expires_at_unix_millis()));
        let reply: Option<String> = self.query(context, cmd).await?;
        Ok(reply.is_some())
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        let mut cmd = redis::cmd("GET");
        cmd.arg(&key);
        let value: Option<Vec<u8>> = self.query("loading a session key", cmd).await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let Some(record) = decode(id, value) else {
            tracing::warn!(
                target: "session::security",
                %key,
                "Session data corrupted; treating it as no session"
            );
            return Ok(None);
        };
        Ok(Some(record).filter(|record| record.is_live_at(OffsetDateTime::now_utc())))
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        if self.set("creating a session key", record, "NX").await? {
            Ok(())
        } else {
            Err(StoreError::DuplicateId)
        }
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        if self.set("updating a session key", record, "XX").await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let key = self.key(id);
        let millis = session_core::record::unix_millis(expires_at);
        let touched: i64 = self
            .bounded("touching a session key", async {
                let mut invocation = TOUCH.key(&key);
                invocation.arg(millis).arg(pxat(millis));
                match &self.connection {
                    Connection::Single(manager) => {
                        invocation.invoke_async(&mut manager.clone()).await
                    }
                    #[cfg(feature = "cluster")]
                    Connection::Cluster(cluster) => {
                        invocation.invoke_async(&mut cluster.get().await?).await
                    }
                }
            })
            .await?;
        if touched == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(id));
        let removed: i64 = self.query("deleting a session key", cmd).await?;
        Ok(removed > 0)
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[cfg(feature = "cluster")]
mod cluster {
    use std::sync::Arc;
    use std::time::Duration;

    use redis::RedisError;
    use redis::cluster::ClusterClient;
    use redis::cluster_async::ClusterConnection;
    use session_core::StoreError;
    use tokio::sync::OnceCell;

    /// A cluster connection made on first use (and retried on the next use if that fails).
    #[derive(Clone)]
    pub(super) struct LazyCluster(Arc<Inner>);

    struct Inner {
        client: ClusterClient,
        connection: OnceCell<ClusterConnection>,
    }

    impl LazyCluster {
        pub(super) fn new<I, S>(urls: I, timeout: Duration) -> Result<Self, StoreError>
        where
            I: IntoIterator<Item = S>,
            S: AsRef<str>,
        {
            let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
            let client = ClusterClient::builder(urls)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(2)
                .build()
                .map_err(|e| {
                    StoreError::config_caused_by("the Redis Cluster URLs are not valid", e)
                })?;
            Ok(Self(Arc::new(Inner {
                client,
                connection: OnceCell::new(),
            })))
        }

        pub(super) async fn get(&self) -> Result<ClusterConnection, RedisError> {
            self.0
                .connection
                .get_or_try_init(|| self.0.client.get_async_connection())
                .await
                .cloned()
        }
    }
}
