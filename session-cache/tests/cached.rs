//! `CachedStore` through the conformance kit on two pairings (Redis over PostgreSQL, memory
//! over SQLite), the logout race, and a cache that goes away and comes back.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{free_port, start_redis};
use session_cache::{CachedConfig, CachedStore, RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{MemoryStore, Record, RecordId, SessionKey, SessionStore, StoreError};
use session_db::{PostgresStore, SqliteStore};
use session_testkit::services::{self, Service};
use session_testkit::{Capabilities, store_conformance};

fn redis_cache() -> RedisStore {
    let url = services::url(Service::Redis).expect("checked by Capabilities::requires");
    let config = RedisConfig::new().prefix(session_testkit::unique_name("cached"));
    RedisStore::new(&url, config).expect("a Redis store")
}

async fn postgres() -> PostgresStore {
    let url = services::url(Service::Postgres).expect("checked by Capabilities::requires");
    session_db::testing::postgres_store(&url, "cached")
        .await
        .expect("a test table")
}

async fn cached_redis_postgres() -> CachedStore<RedisStore, PostgresStore> {
    CachedStore::new(redis_cache(), postgres().await)
}

async fn sqlite_memory() -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

async fn cached_memory_sqlite() -> CachedStore<MemoryStore, SqliteStore> {
    CachedStore::new(MemoryStore::new(), sqlite_memory().await)
}

const REDIS_POSTGRES: Capabilities = Capabilities::new()
    .requires(Service::Redis)
    .requires(Service::Postgres);

store_conformance!(cached_redis_postgres, REDIS_POSTGRES, cached_redis_postgres);
store_conformance!(
    cached_memory_sqlite,
    Capabilities::new(),
    cached_memory_sqlite
);
session_testkit::owner_conformance!(
    cached_redis_postgres_owner,
    REDIS_POSTGRES,
    cached_redis_postgres
);
session_testkit::owner_conformance!(
    cached_memory_sqlite_owner,
    Capabilities::new(),
    cached_memory_sqlite
);

fn record() -> Record {
    Record::new(
        SessionKey::generate().record_id(),
        r#"{"v":1,"data":{"user_id":1}}"#,
        OffsetDateTime::now_utc() + session_core::time::Duration::hours(1),
    )
}

/// A durable store whose loads pause after reading, widening the window in which a logout
/// can land between a load's durable read and its cache fill.
struct SlowLoads<S> {
    inner: S,
    pause: AtomicU64,
}

#[async_trait]
impl<S: SessionStore> SessionStore for SlowLoads<S> {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let found = self.inner.load(id).await?;
        // 0 to 1.5 ms, varied per call.
        let micros = self.pause.fetch_add(397, Ordering::Relaxed) % 1_500;
        tokio::time::sleep(Duration::from_micros(micros)).await;
        Ok(found)
    }
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.update(record).await
    }
    async fn touch(&self, id: &RecordId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.touch(id, at).await
    }
    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        self.inner.delete(id).await
    }
    async fn clear_expired(&self) -> Result<u64, StoreError> {
        self.inner.clear_expired().await
    }
}

/// 1,000 logouts racing a load that read the durable store just before: afterwards no
/// logged-out session is loadable, through the cached store or from the cache alone.
async fn logout_race<C: SessionStore, D: SessionStore>(cache: C, durable: D) {
    let store = Arc::new(CachedStore::new(
        cache,
        SlowLoads {
            inner: durable,
            pause: AtomicU64::new(0),
        },
    ));
    let mut filled_before_logout = 0;
    for _ in 0..1_000 {
        let session = record();
        store.create(&session).await.expect("create");
        // Start from a cold cache, so the load goes to the durable store and fills.
        store.cache().delete(session.id()).await.expect("evict");
        let loader = {
            let store = store.clone();
            let id = session.id().clone();
            tokio::spawn(async move { store.load(&id).await })
        };
        tokio::task::yield_now().await;
        let logout = store.delete(session.id()).await.expect("logout");
        if loader.await.expect("task").expect("load").is_some() {
            filled_before_logout += 1;
        }
        assert!(logout, "the logout found the session live");
        assert_eq!(
            store.load(session.id()).await.expect("load"),
            None,
            "a logout was undone"
        );
        let cached = store.cache().load(session.id()).await.expect("cache load");
        assert!(
            cached.is_none_or(|r| r.payload() != session.payload()),
            "the cache still serves a logged-out session"
        );
    }
    eprintln!(
        "logout race: {filled_before_logout} of 1000 loads read the session before the logout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_memory_logout_race_1000_times() {
    logout_race(MemoryStore::new(), MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_redis_postgres_logout_race_1000_times() {
    if services::require(Service::Redis).is_none() || services::require(Service::Postgres).is_none()
    {
        return;
    }
    logout_race(redis_cache(), postgres().await).await;
}

async fn cache_has(port: u16, prefix: &str, id: &RecordId) -> bool {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("EXISTS")
        .arg(format!("{prefix}{}", id.as_str()))
        .query_async::<i64>(&mut conn)
        .await
        .expect("EXISTS")
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_cache_down_falls_back_to_the_durable_store_and_recovers() {
    const CACHE_TIMEOUT: Duration = Duration::from_millis(300);
    let port = free_port();
    let Some(mut server) = start_redis(port).await else {
        return;
    };
    let prefix = "fallback:";
    let cache = RedisStore::new(
        &format!("redis://127.0.0.1:{port}"),
        RedisConfig::new().prefix(prefix).timeout(CACHE_TIMEOUT),
    )
    .expect("cache");
    let config = CachedConfig::new().cool_down(Duration::from_millis(500));
    let store = CachedStore::with_config(cache, sqlite_memory().await, config);
    let before = record();
    store
        .create(&before)
        .await
        .expect("create while the cache is up");
    assert!(cache_has(port, prefix, before.id()).await);

    server.kill().await.expect("stop the cache");
    server.wait().await.expect("reap");
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let during = record();
        let started = Instant::now();
        store
            .create(&during)
            .await
            .expect("create with the cache down");
        assert_eq!(
            store.load(during.id()).await.expect("load"),
            Some(during.clone())
        );
        store
            .update(&during)
            .await
            .expect("update with the cache down");
        assert!(store.load(before.id()).await.expect("load").is_some());
        slowest = slowest.max(started.elapsed() / 4);
    }
    assert!(
        slowest < CACHE_TIMEOUT * 2,
        "a request waited {slowest:?} with a {CACHE_TIMEOUT:?} cache timeout"
    );
    assert!(store.cache_bypassed(), "repeated failures bypass the cache");
    assert!(
        store
            .delete(before.id())
            .await
            .expect("a logout works with the cache down"),
        "the session was live"
    );

    let _server = start_redis(port).await.expect("restart the cache");
    let after = record();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        store.create(&record()).await.expect("create");
        if !store.cache_bypassed() {
            store.create(&after).await.expect("create");
            if cache_has(port, prefix, after.id()).await {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the cache was not used again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.load(after.id()).await.expect("load"), Some(after));
    assert_eq!(
        store.load(before.id()).await.expect("load"),
        None,
        "the logout made while the cache was down stays a logout"
    );
}
