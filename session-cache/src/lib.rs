//! Django's `cache` session engine for Rust: [`RedisStore`] keeps sessions in Redis, on one
//! server or a Redis Cluster (feature `cluster`, on by default).

mod redis_store;

pub use redis_store::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisConfig, RedisStore};
