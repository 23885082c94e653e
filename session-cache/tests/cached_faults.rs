//! `CachedStore` under cache faults, with a `redis-server` of the test's own: 20 sessions are
//! updated in a loop while the cache is stopped and restarted (empty, or from its saved data),
//! frozen with SIGSTOP, or refuses writes; some are logged out meanwhile. No counter may ever
//! go backwards, each session ends at its last acknowledged write, and a logout stays a
//! logout. On PostgreSQL and on SQLite, with one store instance and with two sharing the cache
//! and the database (two application servers).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, start_redis_in};
use session_cache::{CachedConfig, CachedStore, RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{Record, RecordId, SessionKey, SessionStore, StoreError};
use session_db::{PostgresStore, SqliteStore};
use session_testkit::services::{self, Service};
use session_testkit::{Faults, FaultyStore};
use tokio::process::Child;

const SESSIONS: usize = 20;
/// Sessions 0..LOGGED_OUT are logged out while the fault lasts.
const LOGGED_OUT: usize = 4;
const CACHE_TIMEOUT: Duration = Duration::from_millis(250);

fn config() -> CachedConfig {
    CachedConfig::new()
        .cool_down(Duration::from_millis(300))
        .epoch_refresh(Duration::from_millis(200))
        // Above every instance's cool-down plus the cache timeout.
        .recovery_window(Duration::from_millis(1200))
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Killed, then restarted with nothing in it.
    RestartEmpty,
    /// Snapshotted (`SAVE`), killed, then restarted from the snapshot: old data comes back.
    RestartFromSnapshot,
    /// Frozen with SIGSTOP for longer than the cache timeout, then resumed.
    Freeze,
    /// Writes fail (`maxmemory` 1 byte, `noeviction`) while reads succeed.
    WritesFail,
}

/// The test's own Redis: a child process with its data directory.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    async fn start() -> Option<Self> {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a data directory");
        let child = start_redis_in(port, Some(dir.path())).await?;
        Some(Self {
            port,
            dir,
            child: Some(child),
        })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn command(&self, args: &[&str]) {
        let client = redis::Client::open(self.url()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's redis-server");
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async::<redis::Value>(&mut conn)
            .await
            .unwrap_or_else(|error| panic!("{args:?}: {error}"));
    }

    async fn get(&self, key: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test's redis-server");
        redis::cmd("GET")
            .arg(key)
            .query_async::<Option<String>>(&mut conn)
            .await
            .expect("GET")
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().and_then(Child::id).expect("running");
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill {signal} {pid}");
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("stop redis-server");
            child.wait().await.expect("reap");
        }
    }

    async fn restart(&mut self, keep_snapshot: bool) {
        if !keep_snapshot {
            let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        }
        let child = start_redis_in(self.port, Some(self.dir.path()))
            .await
            .expect("restart redis-server");
        self.child = Some(child);
    }

    fn snapshot(&self) -> &Path {
        self.dir.path()
    }
}

/// What the workload knows about one session.
#[derive(Debug, Clone, Copy, Default)]
struct Expect {
    /// The last counter an `update` acknowledged.
    acked: u64,
    /// The highest counter ever sent (an unacknowledged write may still have landed).
    sent: u64,
    logged_out: bool,
}

fn payload(counter: u64) -> String {
    format!(r#"{{"v":1,"data":{{"counter":{counter}}}}}"#)
}

fn counter(record: &Record) -> u64 {
    let value: serde_json::Value = serde_json::from_str(record.payload()).expect("json");
    value["data"]["counter"].as_u64().expect("a counter")
}

fn expires() -> OffsetDateTime {
    OffsetDateTime::now_utc() + session_core::time::Duration::hours(1)
}

struct Workload<D> {
    stores: Vec<CachedStore<Arc<dyn SessionStore>, D>>,
    ids: Vec<RecordId>,
    expect: Vec<Expect>,
    step: usize,
}

impl<D: SessionStore> Workload<D> {
    /// One round: every session is loaded and incremented, each by the next instance.
    async fn round(&mut self) {
        for i in 0..SESSIONS {
            self.step += 1;
            let store = &self.stores[(self.step + i) % self.stores.len()];
            let id = &self.ids[i];
            let expect = &mut self.expect[i];
            let loaded = match store.load(id).await {
                Ok(loaded) => loaded,
                // The durable store answers; a load error would be a test failure anyway.
                Err(error) => panic!("load failed: {error:?}"),
            };
            let Some(record) = loaded else {
                assert!(
                    expect.logged_out,
                    "session {i} vanished while live ({expect:?})"
                );
                continue;
            };
            assert!(
                !expect.logged_out,
                "session {i} was logged out but is served again with {}",
                counter(&record)
            );
            let seen = counter(&record);
            assert!(
                seen >= expect.acked && seen <= expect.sent,
                "session {i} went backwards: read {seen}, last acknowledged {} (instance {})",
                expect.acked,
                (self.step + i) % self.stores.len()
            );
            let next = seen + 1;
            expect.sent = expect.sent.max(next);
            match store
                .update(&Record::new(id.clone(), payload(next), expires()))
                .await
            {
                Ok(()) => expect.acked = next,
                Err(StoreError::NotFound) => panic!("session {i} not found for update"),
                Err(error) => eprintln!("update of session {i} not acknowledged: {error}"),
            }
        }
    }

    async fn rounds_for(&mut self, period: Duration) {
        let until = Instant::now() + period;
        while Instant::now() < until {
            self.round().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn log_out(&mut self, i: usize) {
        let store = &self.stores[i % self.stores.len()];
        let live = store.delete(&self.ids[i]).await.unwrap_or_else(|error| {
            panic!("a logout whose durable delete works succeeds: {error}")
        });
        assert!(live, "session {i} was live");
        self.expect[i].logged_out = true;
    }

    /// Every session, through every instance, as the last acknowledged write said.
    async fn check_final(&self) {
        for (n, store) in self.stores.iter().enumerate() {
            for (i, expect) in self.expect.iter().enumerate() {
                let loaded = store.load(&self.ids[i]).await.expect("load");
                match loaded {
                    None => assert!(expect.logged_out, "session {i} lost on instance {n}"),
                    Some(record) => {
                        assert!(!expect.logged_out, "logout of {i} undone on instance {n}");
                        let seen = counter(&record);
                        assert!(
                            seen >= expect.acked && seen <= expect.sent,
                            "session {i} on instance {n}: {seen}, acknowledged {}",
                            expect.acked
                        );
                    }
                }
            }
        }
    }
}

async fn run<D: SessionStore + Clone>(fault: Fault, durable: D, instances: usize) {
    let Some(mut redis) = OwnRedis::start().await else {
        return;
    };
    let stores: Vec<_> = (0..instances)
        .map(|_| {
            let cache = RedisStore::new(
                &redis.url(),
                RedisConfig::new().prefix("faults:").timeout(CACHE_TIMEOUT),
            )
            .expect("cache");
            CachedStore::with_config(
                Arc::new(cache) as Arc<dyn SessionStore>,
                durable.clone(),
                config(),
            )
        })
        .collect();
    let ids: Vec<RecordId> = (0..SESSIONS)
        .map(|_| SessionKey::generate().record_id())
        .collect();
    for id in &ids {
        stores[0]
            .create(&Record::new(id.clone(), payload(0), expires()))
            .await
            .expect("create");
    }
    let mut work = Workload {
        stores,
        ids,
        expect: vec![Expect::default(); SESSIONS],
        step: 0,
    };
    work.rounds_for(Duration::from_millis(400)).await;

    match fault {
        Fault::RestartEmpty => redis.stop().await,
        Fault::RestartFromSnapshot => {
            redis.command(&["SAVE"]).await;
            assert!(redis.snapshot().join("dump.rdb").exists(), "a snapshot");
            redis.stop().await;
        }
        Fault::Freeze => redis.signal("-STOP"),
        Fault::WritesFail => {
            redis
                .command(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
                .await;
            redis.command(&["CONFIG", "SET", "maxmemory", "1"]).await;
        }
    }
    // Longer than the cache timeout, the breaker's cool-down and a few of its retries.
    work.rounds_for(Duration::from_millis(700)).await;
    for i in 0..LOGGED_OUT {
        work.log_out(i).await;
    }
    work.rounds_for(Duration::from_millis(700)).await;
    match fault {
        Fault::RestartEmpty => redis.restart(false).await,
        Fault::RestartFromSnapshot => redis.restart(true).await,
        Fault::Freeze => redis.signal("-CONT"),
        Fault::WritesFail => redis.command(&["CONFIG", "SET", "maxmemory", "0"]).await,
    }
    // Until every instance uses the cache again (a reconnect can take a while), then past
    // the recovery window.
    let deadline = Instant::now() + Duration::from_secs(20);
    while work.stores.iter().any(CachedStore::cache_bypassed) {
        assert!(Instant::now() < deadline, "the cache was not used again");
        work.rounds_for(Duration::from_millis(100)).await;
    }
    work.rounds_for(config().recovery_window + Duration::from_millis(600))
        .await;
    work.check_final().await;
    // The cache is in use again: it holds every live session under a trusted epoch.
    let newest = work
        .stores
        .iter()
        .map(CachedStore::cache_epoch)
        .max()
        .unwrap_or(0);
    for (i, id) in work.ids.iter().enumerate().skip(LOGGED_OUT) {
        let cached = redis.get(&format!("faults:{}", id.as_str())).await;
        let epoch = cached
            .as_deref()
            .and_then(|value| value.split_once(":#"))
            .and_then(|(_, rest)| rest.split_once(':'))
            .and_then(|(epoch, _)| epoch.parse::<u64>().ok());
        assert!(
            epoch.is_some_and(|epoch| epoch >= newest),
            "session {i} is not cached under a current epoch ({newest}): {cached:.40?}"
        );
    }
    redis.stop().await;
}

async fn postgres() -> Option<PostgresStore> {
    let url = services::require(Service::Postgres)?;
    Some(
        session_db::testing::postgres_store(&url, "faults")
            .await
            .expect("a test table"),
    )
}

async fn sqlite(dir: &Path) -> SqliteStore {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.join("sessions.sqlite3").display()
    );
    let store = SqliteStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

macro_rules! fault_tests {
    ($($name:ident: $fault:expr, $instances:expr;)*) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(durable) = postgres().await else { return };
                    run($fault, durable, $instances).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    run($fault, sqlite(dir.path()).await, $instances).await;
                }
            )*
        }
    };
}

fault_tests! {
    cached_cache_restarted_empty: Fault::RestartEmpty, 1;
    cached_cache_restarted_from_snapshot: Fault::RestartFromSnapshot, 1;
    cached_cache_frozen_then_resumed: Fault::Freeze, 1;
    cached_cache_refusing_writes: Fault::WritesFail, 1;
    cached_two_instances_cache_restarted_empty: Fault::RestartEmpty, 2;
    cached_two_instances_cache_restarted_from_snapshot: Fault::RestartFromSnapshot, 2;
    cached_two_instances_cache_frozen_then_resumed: Fault::Freeze, 2;
    cached_two_instances_cache_refusing_writes: Fault::WritesFail, 2;
}

/// A fault only one instance sees (its cache writes fail, the other's work): the other may
/// serve the entry that missed the write, but for no longer than `epoch_refresh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_partition_seen_by_one_instance_is_bounded_by_epoch_refresh() {
    let Some(redis) = OwnRedis::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let durable = sqlite(dir.path()).await;
    let cache = || {
        RedisStore::new(
            &redis.url(),
            RedisConfig::new().prefix("part:").timeout(CACHE_TIMEOUT),
        )
        .expect("cache")
    };
    let partitioned = Arc::new(FaultyStore::new(cache()));
    let config = config();
    let a = CachedStore::with_config(partitioned.clone(), durable.clone(), config.clone());
    let b = CachedStore::with_config(cache(), durable.clone(), config.clone());
    let id = SessionKey::generate().record_id();
    b.create(&Record::new(id.clone(), payload(1), expires()))
        .await
        .expect("create");
    assert_eq!(
        b.load(&id).await.expect("load").map(|r| counter(&r)),
        Some(1)
    );

    for round in 2..6 {
        partitioned.set_faults(Faults::Writes);
        a.update(&Record::new(id.clone(), payload(round), expires()))
            .await
            .expect("the durable write is acknowledged once an epoch is published");
        let acknowledged = Instant::now();
        partitioned.set_faults(Faults::None);
        // The bound: after `epoch_refresh`, B no longer serves what the cache holds from
        // before A's write.
        tokio::time::sleep(config.epoch_refresh + Duration::from_millis(50)).await;
        let seen = b.load(&id).await.expect("load").map(|r| counter(&r));
        assert_eq!(
            seen,
            Some(round),
            "{:?} after a write the cache missed, instance B still served it",
            acknowledged.elapsed()
        );
    }
    // And a logout that only A's cache missed.
    partitioned.set_faults(Faults::Writes);
    assert!(a.delete(&id).await.expect("logout"));
    partitioned.set_faults(Faults::None);
    tokio::time::sleep(config.epoch_refresh + Duration::from_millis(50)).await;
    assert_eq!(
        b.load(&id).await.expect("load"),
        None,
        "the logout was undone"
    );
}
