#![doc = include_str!("../README.md")]
mod dir;
pub mod format;
mod store;

pub use store::{DEFAULT_PREFIX, FileOptions, FileStore};
