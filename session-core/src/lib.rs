#![doc = include_str!("../README.md")]
//!
//! ## Details
//!
//! Server-side sessions for Rust, in the spirit of Django's `django.contrib.sessions`.
//!
//! The browser holds only a random [`SessionKey`] in a cookie; the data lives on the server,
//! in a [`SessionStore`] the application picks. Stores see only [`RecordId`]s, the SHA-256 of
//! keys, and persist opaque [`Record`]s; every session rule lives here, once.
//!
//! - [`Session`]: the handle request code uses (`get`, `insert`, `flush`, `cycle_key`, …).
//! - [`SessionConfig`]: Django's `SESSION_*` settings and defaults.
//! - [`SessionManager`]: the request lifecycle of Django's `SessionMiddleware`, for any
//!   framework (`session-tower` applies it to tower and axum).
//! - [`SessionStore`]: the contract engines implement; [`MemoryStore`] is the in-memory one.
//! - [`OwnerIndex`]: "log out everywhere": a store's index of sessions by owner, behind
//!   [`Session::set_owner`], [`Session::other_sessions`], [`Session::end_other_sessions`] and
//!   [`SessionManager::end_sessions_of`] (the [`owner`] module).
//! - [`spawn_cleanup`]: Django's `clearsessions` on a timer.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{MemoryStore, Session, SessionConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::SessionError> {
//! let session = Session::new(Arc::new(MemoryStore::new()), Arc::new(SessionConfig::default()));
//! session.insert("user_id", 123).await?;
//! assert_eq!(session.get::<i64>("user_id").await?, Some(123));
//! # Ok(())
//! # }
//! ```

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
