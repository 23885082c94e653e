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
