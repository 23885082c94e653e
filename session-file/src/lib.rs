//! Django's `file` session engine for Rust: one crash-safe file per session in a directory,
//! no server to run. See [`FileStore`].

mod dir;
pub mod format;
mod store;

pub use store::{DEFAULT_PREFIX, FileOptions, FileStore};
