//! The store contract every engine implements.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::codec::{Codec, Envelope};
use crate::{KeyMapping, OwnerIndex, Record, RecordId, StoreError};

/// Where session records live: the contract every engine (database, files, Redis, memory)
/// implements, and that `session-testkit`'s `store_conformance!` checks, rule by rule.
///
/// Stores persist opaque [`Record`]s and know nothing of cookies, JSON or session semantics.
///
/// - **Live** means present with `expires_at > now`, exactly: not a millisecond longer or
///   shorter, where `now` is the application clock (`OffsetDateTime::now_utc()`), never a
///   database server's clock. A record whose `expires_at` equals `now` is expired.
/// - **Moments** handed to a store are UTC in whole milliseconds, from the past to the last
///   millisecond of year 9999; a store gives back exactly what it was given.
/// - **Payloads** come back byte for byte: no trimming, no line-ending or escape changes,
///   every Unicode plane. A store must hold payloads up to at least the default session size
///   limit ([`DEFAULT_MAX_PAYLOAD_BYTES`](crate::DEFAULT_MAX_PAYLOAD_BYTES), 1 MiB), and a
///   reader never sees a torn payload: always one complete write.
/// - **Ids** are whole keys: ids sharing long prefixes or suffixes are separate records, and
///   an operation on one record touches no other.
/// - **Atomicity**: `create` is atomic (of many concurrent creates of one id exactly one
///   wins); `update` replaces payload and expiry together; `touch` writes the expiry alone and
///   never rewrites the payload, so it cannot undo a concurrent `update`.
/// - **Expired leftovers**: `create` replaces one; `update` and `touch` treat it as missing
///   (`NotFound`) and may leave it for `clear_expired`; `load` may delete the expired record it
///   found, and nothing else; `delete` removes it and reports `false`.
/// - `touch` to a moment in the past is allowed and makes the record expired; `update` and
///   `touch` with an unchanged expiry succeed.
///
/// Concurrent updates of one record are last-writer-wins, as in Django.
///
/// A store implements the trait with [`async_trait`](crate::async_trait), re-exported here;
/// `session-testkit`'s "Writing a store" guide has a complete one.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Returns the live record with this id. A missing or expired record is `Ok(None)`; the
    /// store may delete the expired record it found, and nothing else.
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError>;

    /// Inserts a record atomically. A live record with the same id is
    /// [`StoreError::DuplicateId`] and stays untouched; an expired leftover is replaced.
    async fn create(&self, record: &Record) -> Result<(), StoreError>;

    /// Replaces the payload and expiry of a live record. When there is no live record,
    /// [`StoreError::NotFound`] and nothing is created, so a session deleted by a concurrent
    /// logout stays deleted.
    async fn update(&self, record: &Record) -> Result<(), StoreError>;

    /// Moves the expiry of a live record and leaves its payload untouched; no live record is
    /// [`StoreError::NotFound`]. One write of the expiry alone, never a load and an update
    /// (that would lose concurrent writes).
    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError>;

    /// Removes the record and reports whether a live one existed. Idempotent.
    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError>;

    /// Deletes expired records and returns how many. Engines whose backend expires records by
    /// itself (Redis) return `Ok(0)`.
    async fn clear_expired(&self) -> Result<u64, StoreError>;

    /// How session keys become this store's record ids. The default, and the only choice
    /// for a store of its own, is [`KeyMapping::Hashed`]; a store sharing its table with a
    /// system that keeps raw keys (Django) returns [`KeyMapping::RawKey`], and says so loudly.
    /// A wrapper store forwards its inner store's answer.
    fn key_mapping(&self) -> KeyMapping {
        KeyMapping::Hashed
    }

    /// The payload format the session layer writes into this store's records. The default
    /// is the JSON [`Envelope`]; a store sharing its records with another system returns that
    /// system's format (Django's signed encoding). A wrapper store forwards its inner store's.
    fn codec(&self) -> &dyn Codec {
        &Envelope
    }

    /// The store's index of sessions by owner, if it has one ("log out everywhere"): see
    /// [`OwnerIndex`]. The default is `None`, and a store without one ignores
    /// [`Record::ownership`]; [`Session::set_owner`](crate::Session::set_owner) then fails
    /// with [`SessionError::NoOwnerIndex`](crate::SessionError::NoOwnerIndex). A store with
    /// one returns `Some(self)`; a wrapper store forwards its inner store's answer.
    fn owner_index(&self) -> Option<&dyn OwnerIndex> {
        None
    }
}

macro_rules! forward_store {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<S: SessionStore + ?Sized> SessionStore for $ptr<S> {
            async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
                (**self).load(id).await
            }
            async fn create(&self, record: &Record) -> Result<(), StoreError> {
                (**self).create(record).await
            }
            async fn update(&self, record: &Record) -> Result<(), StoreError> {
                (**self).update(record).await
            }
            async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
                (**self).touch(id, expires_at).await
            }
            async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
                (**self).delete(id).await
            }
            async fn clear_expired(&self) -> Result<u64, StoreError> {
                (**self).clear_expired().await
            }
            fn key_mapping(&self) -> KeyMapping {
                (**self).key_mapping()
            }
            fn codec(&self) -> &dyn Codec {
                (**self).codec()
            }
            fn owner_index(&self) -> Option<&dyn OwnerIndex> {
                (**self).owner_index()
            }
        }
    )*};
}

forward_store!(Arc, Box);
