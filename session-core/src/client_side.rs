//! Client-side sessions: the whole session in the cookie, as Django's `signed_cookies`
//! engine keeps it, with no server state.
//!
//! A [`CookieSealer`] turns a session into its cookie value and back (signed, or encrypted);
//! [`SessionManager::client_side`](crate::SessionManager::client_side) runs the same
//! lifecycle as for a store. Inside a request the session lives in a [`CookieJar`]: a store
//! holding only what this request's cookie carried and what the handler saved, whose
//! payloads are sealed cookie values. The cookie sent back is the jar's record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::codec::{Codec, DecodeError, SessionData};
use crate::record::from_unix_millis;
use crate::{Expiry, Record, RecordId, SessionStore, StoreError};

/// The most a cookie (name, `=` and value) may take: browsers keep at least 4,096 bytes per
/// cookie including its attributes; Django's and the RFC's guidance is 4,093 for the pair.
pub const MAX_COOKIE_BYTES: usize = 4093;

/// How a client-side engine seals a session into a cookie value and opens one.
///
/// `open` must never panic on any input; a value that does not verify, is malformed, or was
/// sealed longer ago than the sealer allows is an error (the session loads empty).
pub trait CookieSealer: Send + Sync + 'static {
    /// The cookie value holding these entries and expiry setting, sealed now.
    fn seal(&self, entries: &Map<String, Value>, expiry: Expiry) -> String;

    /// The session a cookie value holds, and when it was sealed (Unix seconds).
    fn open(&self, value: &str) -> Result<(SessionData, i64), DecodeError>;
}

/// A request's client-side session records, under internal keys that never leave the
/// process: what the request's cookie carried, and what the handler saved.
pub struct CookieJar {
    codec: SealerCodec,
    records: Mutex<HashMap<RecordId, Record>>,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar").finish_non_exhaustive()
    }
}

/// The sealer, as the codec the session layer writes the jar's payloads with.
struct SealerCodec(Arc<dyn CookieSealer>);

impl Codec for SealerCodec {
    fn encode(&self, entries: &Map<String, Value>, expiry: Expiry) -> String {
        self.0.seal(entries, expiry)
    }

    fn decode(&self, payload: &str) -> Result<SessionData, DecodeError> {
        self.0.open(payload).map(|(data, _)| data)
    }
}

impl CookieJar {
    /// An empty jar sealing with `sealer`. The client-side manager makes one per request;
    /// public so that the kit's session cases can run over a sealer (as a store whose
    /// payloads are sealed cookie values).
    pub fn new(sealer: Arc<dyn CookieSealer>) -> Self {
        Self {
            codec: SealerCodec(sealer),
            records: Mutex::default(),
        }
    }

    /// Opens a cookie value: the record it stands for (the value is its payload), expiring
    /// when the session's own expiry says, counted from the moment it was sealed (Django's
    /// newer rule: a custom `set_expiry` is honoured, #19201). `None` when it does not verify
    /// or has expired.
    pub(crate) fn open(
        &self,
        id: RecordId,
        value: &str,
        cookie_age: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, DecodeError> {
        let (data, sealed_at) = self.codec.0.open(value)?;
        let sealed_at = sealed_at
            .checked_mul(1000)
            .and_then(from_unix_millis)
            .ok_or(DecodeError::ExpiryOutOfRange)?;
        let expires_at = data.expiry.date(cookie_age, sealed_at);
        Ok((expires_at > now).then(|| Record::new(id, value, expires_at)))
    }

    /// Puts a record in, as the request's cookie carried it.
    pub(crate) fn insert(&self, record: Record) {
        self.lock().insert(record.id().clone(), record);
    }

    /// The sealed value of the live record under `id`: the cookie to send.
    pub(crate) fn sealed(&self, id: &RecordId) -> Option<String> {
        let now = OffsetDateTime::now_utc();
        self.lock()
            .get(id)
            .filter(|record| record.is_live_at(now))
            .map(|record| record.payload().to_owned())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RecordId, Record>> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for CookieJar {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok(self.lock().get(id).filter(|r| r.is_live_at(now)).cloned())
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut records = self.lock();
        if records.get(record.id()).is_some_and(|r| r.is_live_at(now)) {
            return Err(StoreError::DuplicateId);
        }
        records.insert(record.id().clone(), record.clone());
        Ok(())
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut records = self.lock();
        match records.get_mut(record.id()) {
            Some(stored) if stored.is_live_at(now) => {
                *stored = record.clone();
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    /// A cookie carries when it was sealed: moving the expiry seals it again, now.
    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut records = self.lock();
        let Some(stored) = records.get_mut(id).filter(|r| r.is_live_at(now)) else {
            return Err(StoreError::NotFound);
        };
        let data = self
            .codec
            .decode(stored.payload())
            .map_err(|error| StoreError::backend("resealing the session cookie", error))?;
        let payload = self.codec.encode(&data.entries, data.expiry);
        *stored = Record::new(id.clone(), payload, expires_at);
        Ok(())
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok(self.lock().remove(id).is_some_and(|r| r.is_live_at(now)))
    }

    /// Nothing is kept on the server.
    async fn clear_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn codec(&self) -> &dyn Codec {
        &self.codec
    }
}
