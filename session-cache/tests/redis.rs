//! `RedisStore` on a real Redis server and a real Redis Cluster: the conformance kit, each
//! case under its own key prefix, and the fault cases.

use session_cache::{RedisConfig, RedisStore};
use session_testkit::services::{self, Service};
use session_testkit::{Capabilities, store_conformance};

fn config() -> RedisConfig {
    RedisConfig::new().prefix(session_testkit::unique_name("kit"))
}

async fn redis_store() -> RedisStore {
    let url = services::url(Service::Redis).expect("checked by Capabilities::requires");
    RedisStore::new(&url, config()).expect("a Redis store")
}

async fn cluster_store() -> RedisStore {
    let urls = services::url(Service::RedisCluster).expect("checked by Capabilities::requires");
    RedisStore::cluster(urls.split(','), config()).expect("a Redis Cluster store")
}

store_conformance!(
    redis,
    Capabilities::new().self_expiring().requires(Service::Redis),
    redis_store
);
store_conformance!(
    cluster,
    Capabilities::new()
        .self_expiring()
        .requires(Service::RedisCluster),
    cluster_store
);
session_testkit::owner_conformance!(
    redis_owner,
    Capabilities::new().self_expiring().requires(Service::Redis),
    redis_store
);
session_testkit::owner_conformance!(
    cluster_owner,
    Capabilities::new()
        .self_expiring()
        .requires(Service::RedisCluster),
    cluster_store
);

/// The owner set never grows without bound: a logout (and a key rotation) removes its entry,
/// an addition drops the entries that expired, and the set expires with its last session.
#[tokio::test]
async fn redis_owner_set_stays_bounded() {
    use session_core::time::{Duration, OffsetDateTime};
    use session_core::{Ownership, Record, SessionStore};
    let Some(url) = services::require(Service::Redis) else {
        return;
    };
    let prefix = session_testkit::unique_name("bounded");
    let store = RedisStore::new(&url, RedisConfig::new().prefix(prefix.clone())).unwrap();
    let owner = session_testkit::unique_name("owner");
    let set = format!(
        "{prefix}owner:{}",
        session_core::owner::owner_digest(&owner)
    );
    let mut raw = ::redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let record = |ms: i64| {
        let ownership = Ownership::new(owner.as_str(), OffsetDateTime::now_utc()).unwrap();
        Record::new(
            session_testkit::fixtures::fresh_id(),
            r#"{"v":1,"data":{}}"#,
            OffsetDateTime::now_utc() + Duration::milliseconds(ms),
        )
        .with_ownership(Some(ownership))
    };
    let mut size = async || -> (i64, i64) {
        let card: i64 = ::redis::cmd("ZCARD")
            .arg(&set)
            .query_async(&mut raw)
            .await
            .unwrap();
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&set)
            .query_async(&mut raw)
            .await
            .unwrap();
        (card, ttl)
    };
    let logged_out = record(3_600_000);
    store.create(&logged_out).await.unwrap();
    let (card, ttl) = size().await;
    assert_eq!(card, 1);
    assert!(
        ttl > 3_500_000 && ttl <= 3_600_000,
        "the set expires with its session: {ttl}"
    );
    store.delete(logged_out.id()).await.unwrap();
    assert_eq!(size().await.0, 0, "a logout leaves nothing in the set");
    let short = record(200);
    store.create(&short).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let long = record(3_600_000);
    store.create(&long).await.unwrap();
    assert_eq!(
        size().await.0,
        1,
        "the expired entry went with the next addition"
    );
    assert_eq!(
        store
            .owner_index()
            .unwrap()
            .sessions_of(&owner)
            .await
            .unwrap()
            .len(),
        1
    );
}
