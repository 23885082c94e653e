//! Django's `cache` and `cached_db` session engines for Rust: [`RedisStore`] keeps sessions
//! in Redis, on one server or a Redis Cluster (feature `cluster`, on by default);
//! [`CachedStore`] writes through to a durable store and reads from a cache first.

mod cached;
mod epoch;
mod redis_store;

pub use cached::{CachedConfig, CachedStore};
pub use redis_store::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisConfig, RedisStore};
