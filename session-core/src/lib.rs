#![doc = include_str!("../README.md")]

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "axum")]
mod axum;
mod cleanup;
pub mod client_side;
pub mod codec;
mod config;
mod error;
mod expiry;
mod key;
mod manager;
mod memory;
pub mod owner;
pub mod record;
mod session;
mod store;

/// `#[async_trait]`, re-exported so a store author implements [`SessionStore`] with no extra
/// dependency: `#[session_core::async_trait]`.
pub use async_trait::async_trait;
pub use cleanup::{CleanupHandle, spawn_cleanup};
pub use client_side::{CookieSealer, MAX_COOKIE_BYTES};
pub use codec::Codec;
pub use config::{DEFAULT_MAX_PAYLOAD_BYTES, SessionConfig};
pub use cookie::{self, SameSite};
pub use error::{BoxError, ConfigError, SessionError, StoreError, error_chain};
pub use expiry::Expiry;
pub use key::{KEY_LEN, KeyMapping, RecordId, SessionKey};
pub use manager::{Outcome, Replacement, SessionManager};
pub use memory::MemoryStore;
pub use owner::{OwnedSession, OwnerIndex, Ownership};
pub use record::Record;
pub use session::{MAX_CANDIDATES, Session, TEST_COOKIE_NAME, TEST_COOKIE_VALUE};
pub use store::SessionStore;
pub use time;
