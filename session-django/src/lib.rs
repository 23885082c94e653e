#![doc = include_str!("../README.md")]
//!
//! ## The seams in `session-core`
//!
//! The codec and key mapping reach the session layer through two seams of
//! [`SessionStore`](session_core::SessionStore) that every engine shares:
//! [`codec`](session_core::SessionStore::codec) and
//! [`key_mapping`](session_core::SessionStore::key_mapping). Wrappers (`CachedStore`,
//! `CountingStore`, `SignedStore`) forward both.

pub mod auth;
mod codec;
mod cookies;
pub mod json;
mod signed_store;
pub mod signing;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod store;

pub use codec::{DjangoCodec, EXPIRY_KEY, SESSION_SALT, fromisoformat, isoformat};
pub use cookies::{ENCRYPTED_COOKIES_SALT, EncryptedCookies, SIGNED_COOKIES_SALT, SignedCookies};
pub use signed_store::{AT_REST_SALT, SignedStore};
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub use store::{DJANGO_TABLE, DjangoStore};
