//! `RedisStore`: sessions in Redis, on one server or a Redis Cluster.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, Script};
use session_core::time::OffsetDateTime;
use session_core::{
    OwnedSession, OwnerIndex, Ownership, Record, RecordId, SessionStore, StoreError,
};

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
/// earlier, see [`pxat`]), atomically. 0 when there is none, 1 for a record without an owner,
/// and an owned record's ownership JSON (so its owner index entry can follow).
static TOUCH: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"local value = redis.call('GET', KEYS[1])
        if not value then return 0 end
        local stop = string.find(value, '[+:]')
        if not stop then return 0 end
        redis.call('SET', KEYS[1], ARGV[1] .. string.sub(value, stop), 'PXAT', ARGV[2])
        if string.sub(value, stop, stop) == ':' then return 1 end
        local colon = string.find(value, ':', stop, true)
        local n = tonumber(string.sub(value, stop + 1, colon - 1))
        return string.sub(value, colon + 1, colon + n)",
    )
});

/// `touch_owned`: moves the expiry and replaces the ownership of a live key, keeping its
/// payload, atomically; 0 when there is none.
static TOUCH_OWNED: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"local value = redis.call('GET', KEYS[1])
        if not value then return 0 end
        local colon = string.find(value, ':', 1, true)
        if not colon then return 0 end
        local head = string.sub(value, 1, colon - 1)
        local plus = string.find(head, '+', 1, true)
        local skip = 0
        if plus then skip = tonumber(string.sub(head, plus + 1)) or 0 end
        local payload = string.sub(value, colon + 1 + skip)
        redis.call('SET', KEYS[1], ARGV[1] .. '+' .. #ARGV[3] .. ':' .. ARGV[3] .. payload,
            'PXAT', ARGV[2])
        return 1",
    )
});

/// Deletes a key only if its record belongs to `ARGV[1]` (checked inside Redis, so a session
/// that changed owner since it was listed is left alone); 1 when it deleted.
const DELETE_IF_OWNED: &str = r"local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local colon = string.find(value, ':', 1, true)
if not colon then return 0 end
local head = string.sub(value, 1, colon - 1)
local plus = string.find(head, '+', 1, true)
if not plus then return 0 end
local n = tonumber(string.sub(head, plus + 1))
if not n then return 0 end
local ok, ownership = pcall(cjson.decode, string.sub(value, colon + 1, colon + n))
if not ok or type(ownership) ~= 'table' or ownership.o ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])";

/// A key's value: `<expiry in Unix ms>:<payload>`, so one `GET` gives the record back; an
/// owned record's is `<expiry>+<n>:<n bytes of ownership JSON><payload>`.
fn encode(record: &Record) -> String {
    match record.ownership() {
        None => format!("{}:{}", record.expires_at_unix_millis(), record.payload()),
        Some(ownership) => {
            let json = ownership.to_json();
            format!(
                "{}+{}:{json}{}",
                record.expires_at_unix_millis(),
                json.len(),
                record.payload()
            )
        }
    }
}

fn decode(id: &RecordId, value: Vec<u8>) -> Option<Record> {
    let mut value = String::from_utf8(value).ok()?;
    let colon = value.find(':')?;
    let head = value.get(..colon)?;
    let (millis, owned) = match head.split_once('+') {
        Some((millis, len)) => (millis, Some(len.parse::<usize>().ok()?)),
        None => (head, None),
    };
    let millis = millis.parse().ok()?;
    let (ownership, start) = match owned {
        Some(len) => {
            let end = colon.checked_add(1 + len)?;
            (Some(Ownership::from_json(value.get(colon + 1..end)?)?), end)
        }
        None => (None, colon + 1),
    };
    // The payload keeps the value's allocation.
    value.drain(..start);
    Record::from_unix_millis(id.clone(), value, millis)
        .map(|record| record.with_ownership(ownership))
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
/// loads a record with its exact expiry (an owned record's value also carries its
/// [`Ownership`], see the owner index below). `create` is `SET … NX PXAT`, `update` is
/// `SET … XX PXAT` (nil: [`StoreError::NotFound`]), `delete` is `GETDEL`, and `touch` is a small
/// Lua script that moves the expiry in the value and `PXAT` together, atomically. `PXAT` is
/// one millisecond before the record's expiry: Redis keeps a key while `now <= PXAT`, so the
/// key is live exactly while `expires_at > now`, as the contract says, to the millisecond
/// (Redis's clock and the application's must agree, as NTP keeps them). `clear_expired`
/// returns 0: Redis expires keys itself. `KEYS` is never used.
///
/// **Owner index** ([`OwnerIndex`]): each owner has a sorted set `prefix + "owner:" + digest`
/// (the hex SHA-256 of the owner id) of its record ids, scored by expiry. A write of an owned
/// record adds the id first (only ever raising its score, with the set's own expiry raised
/// to match) and writes the record after, so no owned record is ever missing from its set;
/// every addition also drops the entries whose expiry has passed, a `delete` (logout, key
/// rotation) removes its own, and the set expires with its last session. A listing reads the set's live range and checks each record (live,
/// still this owner's), so a deleted, expired or re-owned session is never listed; ending
/// sessions deletes each record only if Redis still finds it owned by that owner. On one
/// server an owned write is still one round trip (a pipeline); on a cluster the set and the
/// record live in different slots, so it is two.
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

    /// `SET key value <condition> PXAT <expiry - 1 ms>`, true when Redis answered `OK`. An
    /// owned record is added to its owner's set first (in the same pipeline on one server).
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
        let Some(ownership) = record.ownership() else {
            let reply: Option<String> = self.query(context, cmd).await?;
            return Ok(reply.is_some());
        };
        let mut pipe = self.index_add(
            ownership.owner(),
            record.id(),
            record.expires_at_unix_millis(),
        );
        match &self.connection {
            Connection::Single(manager) => {
                pipe.add_command(cmd);
                let replies: Vec<redis::Value> = self
                    .bounded(context, pipe.query_async(&mut manager.clone()))
                    .await?;
                Ok(!matches!(replies.last(), Some(redis::Value::Nil) | None))
            }
            #[cfg(feature = "cluster")]
            Connection::Cluster(cluster) => {
                self.bounded(context, async {
                    pipe.query_async::<()>(&mut cluster.get().await?).await
                })
                .await?;
                let reply: Option<String> = self.query(context, cmd).await?;
                Ok(reply.is_some())
            }
        }
    }

    /// The owner set of `owner`.
    fn owner_key(&self, owner: &str) -> String {
        format!(
            "{}owner:{}",
            self.prefix,
            session_core::owner::owner_digest(owner)
        )
    }

    /// The commands that add `id` (expiring at `expires_at` ms) to `owner`'s set: drop the
    /// entries already expired, add or raise this one, and make the set live at least as
    /// long (`PEXPIREAT … NX` on a set without expiry, `GT` on one with).
    fn index_add(&self, owner: &str, id: &RecordId, expires_at: i64) -> redis::Pipeline {
        let key = self.owner_key(owner);
        let now = session_core::record::unix_millis(OffsetDateTime::now_utc());
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZADD")
            .arg(&key)
            .arg("GT")
            .arg(expires_at)
            .arg(id.as_str())
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(expires_at)
            .arg("NX")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(expires_at)
            .arg("GT")
            .ignore();
        pipe
    }

    /// Runs a pipeline of commands on one key each (of any slots) and returns their replies
    /// in order: one round trip on one server, concurrent commands on a cluster.
    async fn per_key<T>(&self, context: &'static str, cmds: Vec<Cmd>) -> Result<Vec<T>, StoreError>
    where
        T: FromRedisValue + Send + 'static,
    {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match &self.connection {
            Connection::Single(manager) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                self.bounded(context, pipe.query_async(&mut manager.clone()))
                    .await
            }
            #[cfg(feature = "cluster")]
            Connection::Cluster(cluster) => {
                let connection = self.bounded(context, cluster.get()).await?;
                let mut tasks = tokio::task::JoinSet::new();
                for (n, cmd) in cmds.into_iter().enumerate() {
                    let mut connection = connection.clone();
                    tasks.spawn(async move { (n, cmd.query_async::<T>(&mut connection).await) });
                }
                let mut replies: Vec<Option<T>> =
                    std::iter::repeat_with(|| None).take(tasks.len()).collect();
                let collected = self
                    .bounded(context, async {
                        while let Some(done) = tasks.join_next().await {
                            let (n, reply) = done.map_err(|e| {
                                RedisError::from(std::io::Error::other(e.to_string()))
                            })?;
                            replies[n] = Some(reply?);
                        }
                        Ok(())
                    })
                    .await;
                collected?;
                Ok(replies.into_iter().flatten().collect())
            }
        }
    }

    /// The ids in `owner`'s set whose expiry has not passed.
    async fn indexed(&self, owner: &str) -> Result<Vec<RecordId>, StoreError> {
        let now = session_core::record::unix_millis(OffsetDateTime::now_utc());
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.owner_key(owner))
            .arg(format!("({now}"))
            .arg("+inf")
            .arg("BYSCORE");
        let ids: Vec<String> = self.query("reading an owner's session set", cmd).await?;
        Ok(ids.iter().filter_map(|id| RecordId::parse(id)).collect())
    }

    /// Adds a touched owned record's new expiry to its owner's set.
    async fn index_touch(
        &self,
        owner: &str,
        id: &RecordId,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let pipe = self.index_add(owner, id, expires_at);
        self.bounded("updating an owner's session set", async {
            match &self.connection {
                Connection::Single(manager) => pipe.query_async::<()>(&mut manager.clone()).await,
                #[cfg(feature = "cluster")]
                Connection::Cluster(cluster) => {
                    pipe.query_async::<()>(&mut cluster.get().await?).await
                }
            }
        })
        .await
    }

    /// Runs a script invocation on its key.
    async fn invoke<T: FromRedisValue>(
        &self,
        context: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.bounded(context, async {
            match &self.connection {
                Connection::Single(manager) => invocation.invoke_async(&mut manager.clone()).await,
                #[cfg(feature = "cluster")]
                Connection::Cluster(cluster) => {
                    invocation.invoke_async(&mut cluster.get().await?).await
                }
            }
        })
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
        let mut invocation = TOUCH.key(&key);
        invocation.arg(millis).arg(pxat(millis));
        let touched: redis::Value = self.invoke("touching a session key", &invocation).await?;
        match touched {
            redis::Value::Int(1) => Ok(()),
            redis::Value::BulkString(json) => {
                // An owned record: its set must list it as long as it now lives. (The layer
                // touches owned records through `touch_owned`, which adds to the set first.)
                let owner = std::str::from_utf8(&json)
                    .ok()
                    .and_then(Ownership::from_json);
                if let Some(ownership) = owner {
                    self.index_touch(ownership.owner(), id, millis).await?;
                }
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        // `GETDEL`: the value says whether the record had an owner, whose set then drops it
        // (so logouts and key rotations leave nothing behind in the set).
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.key(id));
        let removed: Option<Vec<u8>> = self.query("deleting a session key", cmd).await?;
        let Some(value) = removed else {
            return Ok(false);
        };
        if let Some(ownership) = decode(id, value).and_then(|mut record| record.take_ownership()) {
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(self.owner_key(ownership.owner())).arg(id.as_str());
            self.query::<i64>("updating an owner's session set", cmd)
                .await?;
        }
        Ok(true)
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn owner_index(&self) -> Option<&dyn OwnerIndex> {
        Some(self)
    }
}

#[async_trait]
impl OwnerIndex for RedisStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let ids = self.indexed(owner).await?;
        let gets = ids
            .iter()
            .map(|id| {
                let mut cmd = redis::cmd("GET");
                cmd.arg(self.key(id));
                cmd
            })
            .collect();
        let values: Vec<Option<Vec<u8>>> = self
            .per_key("loading an owner's session keys", gets)
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut sessions: Vec<OwnedSession> = ids
            .into_iter()
            .zip(values)
            .filter_map(|(id, value)| {
                let mut record = decode(&id, value?)?;
                let ownership = record.take_ownership()?;
                (record.is_live_at(now) && ownership.owner() == owner).then(|| OwnedSession {
                    expires_at: record.expires_at(),
                    id,
                    ownership,
                })
            })
            .collect();
        session_core::owner::sort_listing(&mut sessions);
        Ok(sessions)
    }

    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError> {
        let ids: Vec<RecordId> = self
            .indexed(owner)
            .await?
            .into_iter()
            .filter(|id| Some(id) != keep)
            .collect();
        let deletes = ids
            .iter()
            .map(|id| {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(DELETE_IF_OWNED).arg(1).arg(self.key(id)).arg(owner);
                cmd
            })
            .collect();
        let deleted: Vec<i64> = self
            .per_key("deleting an owner's session keys", deletes)
            .await?;
        let deleted: Vec<RecordId> = ids
            .into_iter()
            .zip(deleted)
            .filter_map(|(id, n)| (n > 0).then_some(id))
            .collect();
        if !deleted.is_empty() {
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(self.owner_key(owner));
            for id in &deleted {
                cmd.arg(id.as_str());
            }
            self.query::<i64>("updating an owner's session set", cmd)
                .await?;
        }
        Ok(deleted)
    }

    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError> {
        let millis = session_core::record::unix_millis(expires_at);
        self.index_touch(ownership.owner(), id, millis).await?;
        let key = self.key(id);
        let mut invocation = TOUCH_OWNED.key(&key);
        invocation
            .arg(millis)
            .arg(pxat(millis))
            .arg(ownership.to_json());
        let touched: i64 = self
            .invoke("touching an owned session key", &invocation)
            .await?;
        if touched == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
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
