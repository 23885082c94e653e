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

/// Whether a value (`<expiry in Unix ms>:<payload>`, or its first bytes) is live at
/// `ARGV[1]`, the application's clock: Redis itself keeps a key until `now > PXAT`, one
/// millisecond longer than the contract's `expires_at > now`.
const LIVE: &str = r"local function live(value)
    if not value then return false end
    local colon = string.find(value, ':', 1, true)
    if not colon then return false end
    local ms = tonumber(string.sub(value, 1, colon - 1))
    return ms ~= nil and ms > tonumber(ARGV[1])
end
";

/// The first bytes of a value, enough for its expiry (no payload copied).
const HEAD: &str = "redis.call('GETRANGE', KEYS[1], 0, 24)";

fn script(body: &str) -> Script {
    Script::new(&format!("{LIVE}{body}"))
}

/// `create`: sets the value unless a live one is there; 0 for a duplicate.
static CREATE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    script(&format!(
        "if live({HEAD}) then return 0 end
        redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
        return 1"
    ))
});

/// `update`: replaces a live value; 0 when there is none.
static UPDATE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    script(&format!(
        "if not live({HEAD}) then return 0 end
        redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
        return 1"
    ))
});

/// `touch`: moves the expiry of a live key, in its value and for Redis, atomically; 0 when
/// there is none.
static TOUCH: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    script(
        "local value = redis.call('GET', KEYS[1])
        if not live(value) then return 0 end
        local colon = string.find(value, ':', 1, true)
        redis.call('SET', KEYS[1], ARGV[2] .. string.sub(value, colon), 'PXAT', ARGV[2])
        return 1",
    )
});

/// `delete`: removes the key; 1 when it was live.
static DELETE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    script(&format!(
        "local head = {HEAD}
        if redis.call('DEL', KEYS[1]) == 0 then return 0 end
        if live(head) then return 1 end
        return 0"
    ))
});

fn now_millis() -> i64 {
    session_core::record::unix_millis(OffsetDateTime::now_utc())
}

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
#[non_exhaustive]
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
/// loads a record with its exact expiry. `create`, `update`, `touch` and `delete` are small
/// Lua scripts, each one atomic step: they judge liveness on the application's clock from the
/// expiry in the value (Redis keeps a key one millisecond past its `PXAT`, which the contract
/// counts as expired), then `SET … PXAT` or `DEL`; `touch` moves the expiry in the value and
/// `PXAT` together. `clear_expired` returns 0: Redis expires keys itself. `KEYS` is never
/// used.
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

    /// Runs one of the store's scripts on `id`'s key with the application clock as `ARGV[1]`
    /// and `args` after it; true when it returned 1.
    async fn script(
        &self,
        context: &'static str,
        script: &Script,
        id: &RecordId,
        args: &[&str],
    ) -> Result<bool, StoreError> {
        let key = self.key(id);
        let done: i64 = self
            .bounded(context, async {
                let mut invocation = script.key(&key);
                invocation.arg(now_millis());
                for arg in args {
                    invocation.arg(*arg);
                }
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
        Ok(done == 1)
    }

    /// A write script with the record's value and expiry as `ARGV[2]` and `ARGV[3]`.
    async fn write(
        &self,
        context: &'static str,
        script: &Script,
        record: &Record,
    ) -> Result<bool, StoreError> {
        let value = encode(record);
        let expires = record.expires_at_unix_millis().to_string();
        self.script(context, script, record.id(), &[&value, &expires])
            .await
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
        if self
            .write("creating a session key", &CREATE, record)
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::DuplicateId)
        }
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        if self
            .write("updating a session key", &UPDATE, record)
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let millis = session_core::record::unix_millis(expires_at).to_string();
        if self
            .script("touching a session key", &TOUCH, id, &[&millis])
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        self.script("deleting a session key", &DELETE, id, &[])
            .await
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
