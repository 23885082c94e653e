//! [`SignedStore`]: any store, with every payload signed at rest.

use async_trait::async_trait;
use session_core::codec::Codec;
use session_core::time::OffsetDateTime;
use session_core::{KeyMapping, Record, RecordId, SessionStore, StoreError};

use crate::signing::{Keys, Signer};

/// The salt of signatures at rest.
pub const AT_REST_SALT: &str = "session_django.SignedStore";

/// Wraps any store (PostgreSQL, MySQL, SQLite, files, Redis, memory, a third-party one) so
/// that each stored payload carries a signature made with your secret, Django's signer
/// (salted HMAC-SHA256). Whoever can write to the database, the session directory or Redis,
/// but does not know the secret, cannot make up a session, change one, or copy one session's
/// payload to another record: the signature covers the record id and the payload.
///
/// - Stored form: `<payload>:<signature of "<record id>:<payload>">`.
/// - On load, a record without a valid signature (unsigned, tampered, moved to another id,
///   or signed with a key no longer listed) is no session, with a warning on target
///   `session::security`; the lifecycle then drops the cookie.
/// - Rotation: [`Keys::with_fallbacks`] lists old secrets that still verify; each record is
///   signed anew with the current secret at its next save.
/// - Not covered: the expiry moment (a touch writes it alone), the session's owner and its
///   metadata (kept beside the payload for the owner index), and replaying an older
///   signed payload of the same record. Someone who can write the store can still keep a
///   session alive longer, bring back its earlier state, or delete it.
///
/// Turning it on for an existing store logs everyone out once (their records are unsigned).
///
/// ```
/// use session_core::{MemoryStore, SessionConfig, SessionManager};
/// use session_django::{SignedStore, signing::Keys};
///
/// let store = SignedStore::new(MemoryStore::new(), Keys::new("a long random secret"));
/// let manager = SessionManager::new(store, SessionConfig::default());
/// ```
#[derive(Debug, Clone)]
pub struct SignedStore<S> {
    inner: S,
    signer: Signer,
}

impl<S: SessionStore> SignedStore<S> {
    /// Signs what `inner` stores with `keys`.
    pub fn new(inner: S, keys: Keys) -> Self {
        Self {
            inner,
            signer: Signer::new(keys, AT_REST_SALT),
        }
    }

    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn signed(&self, record: &Record) -> Record {
        let signature = self.signature(record.id(), record.payload());
        let mut payload = String::with_capacity(record.payload().len() + 1 + signature.len());
        payload.push_str(record.payload());
        payload.push(':');
        payload.push_str(&signature);
        Record::new(record.id().clone(), payload, record.expires_at())
            .with_ownership(record.ownership().cloned())
    }

    fn signature(&self, id: &RecordId, payload: &str) -> String {
        self.signer.signature(&format!("{id}:{payload}"))
    }

    /// The record with its signature checked and removed; `None` (and a warning) when it
    /// does not verify.
    fn verified(&self, mut record: Record) -> Option<Record> {
        let ownership = record.take_ownership();
        let valid = record
            .payload()
            .rsplit_once(':')
            .filter(|(payload, signature)| {
                self.signer
                    .verify(&format!("{}:{payload}", record.id()), signature)
            })
            .map(|(payload, _)| payload.to_owned());
        match valid {
            Some(payload) => Some(
                Record::new(record.id().clone(), payload, record.expires_at())
                    .with_ownership(ownership),
            ),
            None => {
                tracing::warn!(
                    target: "session::security",
                    record = %record.id().as_str().get(..8).unwrap_or_default(),
                    "session record is unsigned or its signature does not verify; treating it \
                     as no session"
                );
                None
            }
        }
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for SignedStore<S> {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        Ok(self
            .inner
            .load(id)
            .await?
            .and_then(|record| self.verified(record)))
    }
    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.create(&self.signed(record)).await
    }
    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        self.inner.update(&self.signed(record)).await
    }
    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.touch(id, expires_at).await
    }
    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        self.inner.delete(id).await
    }
    async fn clear_expired(&self) -> Result<u64, StoreError> {
        self.inner.clear_expired().await
    }
    fn key_mapping(&self) -> KeyMapping {
        self.inner.key_mapping()
    }
    fn codec(&self) -> &dyn Codec {
        self.inner.codec()
    }
    fn owner_index(&self) -> Option<&dyn session_core::OwnerIndex> {
        self.inner.owner_index()
    }
}
