//! # Writing a store
//!
//! A store persists opaque [`Record`](session_core::Record)s under
//! [`RecordId`](session_core::RecordId)s (the SHA-256 of session keys: a store never sees a
//! key) and implements the six methods of [`SessionStore`](session_core::SessionStore). Its
//! docs state every rule; this kit checks each of them. `session-core` re-exports
//! `async_trait`, so a store needs no other dependency.
//!
//! ## A complete store
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Mutex, MutexGuard};
//!
//! use session_core::time::OffsetDateTime;
//! use session_core::{Record, RecordId, SessionStore, StoreError, async_trait};
//!
//! /// Sessions in a `HashMap`: the whole store contract in a few lines. The lock is never held
//! /// across an `.await`, so every operation is atomic.
//! #[derive(Debug, Default)]
//! pub struct MapStore {
//!     records: Mutex<HashMap<RecordId, Record>>,
//! }
//!
//! impl MapStore {
//!     fn records(&self) -> MutexGuard<'_, HashMap<RecordId, Record>> {
//!         // A panic elsewhere while the lock was held leaves whole records only.
//!         self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
//!     }
//! }
//!
//! /// Live exactly while `expires_at > now`, on the application's clock.
//! fn live(record: &Record) -> bool {
//!     record.is_live_at(OffsetDateTime::now_utc())
//! }
//!
//! #[async_trait]
//! impl SessionStore for MapStore {
//!     async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
//!         Ok(self.records().get(id).filter(|record| live(record)).cloned())
//!     }
//!
//!     async fn create(&self, record: &Record) -> Result<(), StoreError> {
//!         let mut records = self.records();
//!         if records.get(record.id()).is_some_and(live) {
//!             return Err(StoreError::DuplicateId);
//!         }
//!         records.insert(record.id().clone(), record.clone());
//!         Ok(())
//!     }
//!
//!     async fn update(&self, record: &Record) -> Result<(), StoreError> {
//!         match self.records().get_mut(record.id()) {
//!             Some(stored) if live(stored) => {
//!                 *stored = record.clone();
//!                 Ok(())
//!             }
//!             _ => Err(StoreError::NotFound),
//!         }
//!     }
//!
//!     async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
//!         match self.records().get_mut(id) {
//!             Some(stored) if live(stored) => {
//!                 stored.set_expires_at(expires_at);
//!                 Ok(())
//!             }
//!             _ => Err(StoreError::NotFound),
//!         }
//!     }
//!
//!     async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
//!         Ok(self.records().remove(id).is_some_and(|record| live(&record)))
//!     }
//!
//!     async fn clear_expired(&self) -> Result<u64, StoreError> {
//!         let mut records = self.records();
//!         let before = records.len();
//!         records.retain(|_, record| live(record));
//!         Ok((before - records.len()) as u64)
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! ## Running the kit on it
//!
//! With `session-testkit` (and `tokio` for your own async tests) as dev-dependencies:
//!
//! ```
//! # mod my_store { pub type MapStore = session_core::MemoryStore; }
//! // tests/conformance.rs
//! use session_testkit::{Capabilities, store_conformance};
//!
//! store_conformance!(map, Capabilities::new(), || async { my_store::MapStore::default() });
//! # fn main() {}
//! ```
//!
//! `cargo test` then runs one test per rule (`map::store_boundary_load`,
//! `map::store_create_race_has_one_winner`, …), each on its own runtime and thread under a
//! timeout: a store that hangs or blocks its thread fails that case, naming it. A failing
//! case says which rule was broken and what the store returned.
//!
//! - The factory runs once per case and must give an isolated store (its own table, key
//!   prefix, directory or file), since cases run in parallel.
//! - [`Capabilities`](crate::Capabilities) declares what differs: `self_expiring()` for a
//!   backend that expires records by itself (its `clear_expired` may count 0), `requires(..)`
//!   for servers found through [`services`](crate::services), `timeout(..)` per case.
//! - [`session_conformance!`](crate::session_conformance) (opt-in) also runs the session and
//!   request-lifecycle cases on the store; they test `session-core`'s rules, which run there
//!   already.
//! - An owner index ("log out everywhere") is optional: implement
//!   [`session_core::OwnerIndex`] (list an owner's live sessions, delete them but one,
//!   `touch_owned`), persist [`Record::ownership`](session_core::Record::ownership) in
//!   `create`/`update`, return `Some(self)` from `owner_index()`, and run
//!   [`owner_conformance!`](crate::owner_conformance) beside the store cases.
//! - For cases of your own, [`run_case`](crate::run_case) runs one the same way, and
//!   [`fixtures`](crate::fixtures) has what the kit's cases use: [`fresh_id`](crate::fixtures::fresh_id),
//!   [`in_ms`](crate::fixtures::in_ms), [`envelope`](crate::fixtures::envelope),
//!   [`payload_of`](crate::fixtures::payload_of). [`CountingStore`](crate::CountingStore)
//!   counts calls and [`FaultyStore`](crate::FaultyStore) injects failures.
