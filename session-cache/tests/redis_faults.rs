//! Redis going away and coming back, on a server the test starts itself; keys spreading over
//! the cluster's masters; configuration refused before any I/O.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, start_redis};
use session_cache::{RedisConfig, RedisStore};
use session_core::time::OffsetDateTime;
use session_core::{Record, SessionKey, SessionStore, StoreError};
use session_testkit::services::{self, Service};

const TIMEOUT: Duration = Duration::from_millis(500);

fn record() -> Record {
    Record::new(
        SessionKey::generate().record_id(),
        r#"{"v":1,"data":{"user_id":1}}"#,
        OffsetDateTime::now_utc() + session_core::time::Duration::hours(1),
    )
}

async fn assert_fails_within_timeout<T: std::fmt::Debug>(
    what: &str,
    operation: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let outcome = operation.await;
    let took = started.elapsed();
    assert!(
        matches!(outcome, Err(StoreError::Backend { .. })),
        "{what} with the server down: {outcome:?}"
    );
    assert!(
        took < TIMEOUT * 3,
        "{what} took {took:?} with a {TIMEOUT:?} timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_within_timeout_and_recovers() {
    let port = free_port();
    let Some(mut server) = start_redis(port).await else {
        return;
    };
    let config = RedisConfig::new().prefix("faults:").timeout(TIMEOUT);
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}"), config).expect("store");
    let first = record();
    store.create(&first).await.expect("create while up");
    assert!(
        store
            .load(first.id())
            .await
            .expect("load while up")
            .is_some()
    );

    server.kill().await.expect("stop redis-server");
    server.wait().await.expect("reap");
    let other = record();
    let later = OffsetDateTime::now_utc() + session_core::time::Duration::hours(2);
    assert_fails_within_timeout("load", store.load(first.id())).await;
    assert_fails_within_timeout("create", store.create(&other)).await;
    assert_fails_within_timeout("update", store.update(&first)).await;
    assert_fails_within_timeout("touch", store.touch(first.id(), later)).await;
    assert_fails_within_timeout("delete", store.delete(first.id())).await;

    let _server = start_redis(port).await.expect("restart redis-server");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.create(&other).await {
            Ok(()) => break,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the store did not recover: {error}"),
        }
    }
    assert_eq!(
        store.load(other.id()).await.expect("load after recovery"),
        Some(other)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_spreads_300_sessions_over_every_master() {
    let Some(urls) = services::require(Service::RedisCluster) else {
        return;
    };
    let prefix = format!("spread:{}:", std::process::id());
    let config = RedisConfig::new().prefix(prefix.clone());
    let store = RedisStore::cluster(urls.split(','), config).expect("store");
    for _ in 0..300 {
        store.create(&record()).await.expect("create");
    }
    let mut total = 0;
    for url in urls.split(',') {
        let client = redis::Client::open(url).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("node");
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut conn)
            .await
            .expect("ROLE");
        let is_master = matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master");
        if !is_master {
            continue;
        }
        let mut count = 0;
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("SCAN");
            count += keys.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert!(count > 0, "master {url} holds none of the sessions");
        total += count;
    }
    assert_eq!(total, 300);
}

#[tokio::test]
async fn redis_prefix_with_a_hash_tag_is_refused() {
    let config = RedisConfig::new().prefix("session:{app}:");
    let outcome = RedisStore::new("redis://127.0.0.1:1", config.clone());
    assert!(matches!(outcome, Err(StoreError::Config { .. })));
    let outcome = RedisStore::cluster(["redis://127.0.0.1:1"], config);
    assert!(matches!(outcome, Err(StoreError::Config { .. })));
    let outcome = RedisStore::new("not a url", RedisConfig::default());
    assert!(
        matches!(outcome, Err(StoreError::Config { .. })),
        "a bad URL is a configuration error, not an outage"
    );
}
