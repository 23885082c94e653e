//! `RedisStore` on a real Redis server and a real Redis Cluster: the conformance kit, each
//! case under its own key prefix, and the fault cases.

use std::sync::atomic::{AtomicU64, Ordering};

use session_cache::{RedisConfig, RedisStore};
use session_testkit::services::{self, Service};
use session_testkit::{Caps, store_conformance};

/// A key prefix no other case of any run uses.
fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "kit:{}:{nanos}:{}:",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn config() -> RedisConfig {
    RedisConfig {
        prefix: unique_prefix(),
        ..RedisConfig::default()
    }
}

async fn redis_store() -> RedisStore {
    let url = services::url(Service::Redis).expect("checked by Caps::requires");
    RedisStore::connect(&url, config()).expect("a Redis store")
}

async fn cluster_store() -> RedisStore {
    let urls = services::url(Service::RedisCluster).expect("checked by Caps::requires");
    RedisStore::cluster(urls.split(','), config()).expect("a Redis Cluster store")
}

store_conformance!(
    redis,
    Caps::new().self_expiring().requires(Service::Redis),
    redis_store
);
store_conformance!(
    cluster,
    Caps::new().self_expiring().requires(Service::RedisCluster),
    cluster_store
);
