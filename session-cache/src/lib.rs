#![doc = include_str!("../README.md")]
mod cached;
mod epoch;
mod redis_store;

pub use cached::{CachedConfig, CachedStore};
pub use redis_store::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisConfig, RedisStore};
