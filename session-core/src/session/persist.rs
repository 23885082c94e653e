//! Loading a [`Session`] and writing it back: the end-of-request commit, `save`, `flush` and
//! key rotation (`cycle_key`), with Django's rules against revived logouts.

use time::OffsetDateTime;

use super::Session;
use super::state::{Data, Identity, Loaded};
use crate::{Expiry, Record, RecordId, SessionError, SessionKey, StoreError};

/// How many fresh keys `create` tries before giving up on [`StoreError::DuplicateId`].
const CREATE_ATTEMPTS: usize = 10;

/// What the end-of-request commit did, for the cookie the response gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// The record is current: send the cookie with the session's expiry age.
    Current,
    /// The expiry-only write was skipped (touch threshold): the record expires at this moment.
    Kept(OffsetDateTime),
    /// The record was gone when its expiry was to be renewed: remove the cookie.
    Gone,
    /// Only the owned session's `last_seen` was written (expiry kept): no cookie needed.
    Seen,
}

/// The write a save needs.
enum Write {
    /// A new record under a fresh key.
    Create,
    /// A new record under `new`, then delete `old`.
    Rotate { old: SessionKey, new: SessionKey },
    /// Replace payload and expiry of the record under `key`.
    Update { key: SessionKey },
}

impl Session {
    /// The id the store keeps `key`'s record under, by the store's key mapping.
    pub(super) fn id_of(&self, key: &SessionKey) -> RecordId {
        key.record_id_for(self.inner.store.key_mapping())
    }

    /// Loads the entries on first use; marks the session accessed. The request's cookies are
    /// tried in order and the first live, readable record wins; a failure poisons the session.
    pub(super) async fn ensure_loaded(&self) -> Result<(), SessionError> {
        let loaded = |state: &mut super::State| -> Option<Result<(), SessionError>> {
            state.accessed = true;
            match (&state.data, &state.identity) {
                (Data::Poisoned, _) => Some(Err(SessionError::Poisoned)),
                (Data::Loaded(_), _) => Some(Ok(())),
                (Data::Pending, Identity::FromCookie(_)) => None,
                // No key: nothing to load.
                (Data::Pending, _) => {
                    state.data = Data::Loaded(Loaded::default());
                    Some(Ok(()))
                }
            }
        };
        if let Some(done) = loaded(&mut self.state()) {
            return done;
        }
        let _io = self.inner.io.lock().await;
        let candidates = {
            let mut state = self.state();
            if let Some(done) = loaded(&mut state) {
                return done;
            }
            state.identity.stored_keys()
        };
        for key in candidates {
            match self.inner.store.load(&self.id_of(&key)).await {
                Ok(Some(mut record)) => match self.inner.store.codec().decode(record.payload()) {
                    Ok(data) => {
                        let ownership = record.take_ownership();
                        let mut state = self.state();
                        state.identity = Identity::Stored {
                            key,
                            expires_at: record.expires_at(),
                        };
                        state.data = Data::Loaded(Loaded {
                            entries: data.entries,
                            expiry: data.expiry,
                            ownership,
                        });
                        return Ok(());
                    }
                    Err(error) => tracing::warn!(
                        target: "session::security",
                        session = %key,
                        error = %crate::error::error_chain(&error),
                        "Session data corrupted; treating it as no session"
                    ),
                },
                Ok(None) => {
                    tracing::debug!(session = %key, "session key unknown or expired; dropping it");
                }
                Err(error) => {
                    tracing::error!(
                        session = %key,
                        error = %crate::error::error_chain(&error),
                        "loading the session failed; it will not be saved in this request"
                    );
                    self.state().data = Data::Poisoned;
                    return Err(error.into());
                }
            }
        }
        self.state().make_void();
        Ok(())
    }

    /// Loads the session if it has a key and is not loaded yet; a failure poisons it and is
    /// logged. Used by the lifecycle under `save_every_request`.
    pub(crate) async fn load_for_renewal(&self) {
        let _ = self.ensure_loaded().await;
    }

    /// Persists what the request changed, as the request lifecycle does at the end: the full
    /// write when the session changed, otherwise (under `save_every_request`) an expiry-only
    /// touch, skipped while more than `touch_threshold` of the lifetime remains.
    pub(crate) async fn commit(
        &self,
        renew: bool,
        touch_threshold: Option<f64>,
    ) -> Result<Committed, SessionError> {
        self.ensure_loaded().await?;
        let _io = self.inner.io.lock().await;
        let now = OffsetDateTime::now_utc();
        let renewal = {
            let mut state = self.state();
            let seen_due = self.seen_due_in(&state, now);
            let loaded = state.loaded()?;
            let (expiry, ownership) = (loaded.expiry, loaded.ownership.clone());
            match &state.identity {
                Identity::Stored { key, expires_at } if !state.is_modified() => {
                    // Nothing changed: renew the expiry only under save_every_request (a
                    // fixed moment never moves), and an owned session's last seen when due.
                    let renew = renew && !matches!(expiry, Expiry::At(_));
                    if !renew && !seen_due {
                        return Ok(Committed::Current);
                    }
                    Some((key.clone(), expiry, *expires_at, renew, seen_due, ownership))
                }
                // Changed, new, or rotating: the full write.
                _ => None,
            }
        };
        let Some((key, expiry, stored_expires_at, renew, seen_due, ownership)) = renewal else {
            self.write_full().await?;
            return Ok(Committed::Current);
        };
        let cookie_age = self.inner.config.cookie_age;
        let mut committed = Committed::Current;
        let mut expires_at = crate::record::truncate_to_millis(expiry.date(cookie_age, now));
        if !renew {
            (committed, expires_at) = (Committed::Seen, stored_expires_at);
        } else if let Some(fraction) = touch_threshold {
            let lifetime = expiry.age(cookie_age, now) as f64;
            let remaining = (stored_expires_at - now).as_seconds_f64();
            if remaining > fraction * lifetime {
                if !seen_due {
                    return Ok(Committed::Kept(stored_expires_at));
                }
                (committed, expires_at) = (Committed::Kept(stored_expires_at), stored_expires_at);
            }
        }
        let id = self.id_of(&key);
        let touched = match (ownership, self.inner.store.owner_index()) {
            (Some(mut ownership), Some(index)) => {
                ownership.set_last_seen(now);
                self.note_client_in(&mut ownership);
                let touched = index.touch_owned(&id, expires_at, &ownership).await;
                if touched.is_ok()
                    && let Ok(loaded) = self.state().loaded()
                {
                    loaded.ownership = Some(ownership);
                }
                touched
            }
            _ => self.inner.store.touch(&id, expires_at).await,
        };
        match touched {
            Ok(()) => {
                let mut state = self.state();
                state.identity = Identity::Stored { key, expires_at };
                if committed == Committed::Current {
                    state.saved = true;
                }
                Ok(committed)
            }
            Err(StoreError::NotFound) => {
                self.state().make_void();
                Ok(Committed::Gone)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Persists the session now: creates it (under a fresh key), completes a pending
    /// rotation, or updates it, and marks that the cookie must be sent. Saving a new, empty
    /// session creates its record, as in Django.
    pub async fn save(&self) -> Result<(), SessionError> {
        self.ensure_loaded().await?;
        let _io = self.inner.io.lock().await;
        self.write_full().await
    }

    /// The write a save needs; the caller holds the I/O lock and the session is loaded.
    async fn write_full(&self) -> Result<(), SessionError> {
        let now = OffsetDateTime::now_utc();
        let (write, payload, expires_at, version, ownership) = {
            let mut state = self.state();
            let version = state.version;
            let write = match &state.identity {
                Identity::Rotating { old, new } => Write::Rotate {
                    old: old.clone(),
                    new: new.clone(),
                },
                Identity::Stored { key, .. } => Write::Update { key: key.clone() },
                Identity::Fresh | Identity::FromCookie(_) => Write::Create,
            };
            let loaded = state.loaded()?;
            let payload = self
                .inner
                .store
                .codec()
                .encode(&loaded.entries, loaded.expiry);
            let expires_at = loaded.expiry.date(self.inner.config.cookie_age, now);
            (
                write,
                payload,
                expires_at,
                version,
                loaded.ownership.clone(),
            )
        };
        let mut ownership = ownership;
        if let Some(ownership) = &mut ownership {
            ownership.set_last_seen(now);
            self.note_client_in(ownership);
        }
        if let Some(limit) = self.inner.config.max_payload_bytes
            && payload.len() > limit
        {
            return Err(SessionError::TooLarge {
                size: payload.len(),
                limit,
            });
        }

        let record = |key: &SessionKey| {
            Record::new(self.id_of(key), payload.as_str(), expires_at)
                .with_ownership(ownership.clone())
        };
        let key = match write {
            Write::Create => self.create_record(None, &record).await?,
            Write::Rotate { old, new } => {
                let new = self.create_record(Some(new), &record).await?;
                self.finish_rotation(&old, &new).await?;
                new
            }
            Write::Update { key } => match self.inner.store.update(&record(&key)).await {
                Ok(()) => key,
                Err(StoreError::NotFound) => return Err(self.interrupted()),
                Err(error) => return Err(error.into()),
            },
        };

        let mut state = self.state();
        state.identity = Identity::Stored {
            key,
            expires_at: crate::record::truncate_to_millis(expires_at),
        };
        state.written_version = version;
        state.saved = true;
        if let (Ok(loaded), Some(written)) = (state.loaded(), ownership) {
            loaded.ownership = Some(written);
        }
        Ok(())
    }

    /// Creates the record under `proposed` (or a fresh key), retrying with fresh keys while
    /// the store reports a live duplicate.
    async fn create_record(
        &self,
        proposed: Option<SessionKey>,
        record: &impl Fn(&SessionKey) -> Record,
    ) -> Result<SessionKey, SessionError> {
        let mut key = proposed.unwrap_or_else(SessionKey::generate);
        for _ in 0..CREATE_ATTEMPTS {
            match self.inner.store.create(&record(&key)).await {
                Ok(()) => return Ok(key),
                Err(StoreError::DuplicateId) => {
                    tracing::warn!(session = %key, "session key collision; trying a fresh key");
                    key = SessionKey::generate();
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::DuplicateId.into())
    }

    /// Deletes the old record after the new one exists. If the old one was already gone, a
    /// concurrent logout won: the new record is deleted too and the save is interrupted.
    async fn finish_rotation(
        &self,
        old: &SessionKey,
        new: &SessionKey,
    ) -> Result<(), SessionError> {
        let old_was_live = match self.inner.store.delete(&self.id_of(old)).await {
            Ok(live) => live,
            Err(error) => {
                self.discard_record(new).await;
                return Err(error.into());
            }
        };
        if old_was_live {
            return Ok(());
        }
        self.discard_record(new).await;
        Err(self.interrupted())
    }

    /// Best-effort removal of a record this save created but must not leave behind.
    async fn discard_record(&self, key: &SessionKey) {
        if let Err(error) = self.inner.store.delete(&self.id_of(key)).await {
            tracing::error!(
                session = %key,
                error = %crate::error::error_chain(&error),
                "could not remove a session record created by an interrupted rotation"
            );
        }
    }

    /// The session was deleted under us: forget it entirely, so nothing later revives it.
    fn interrupted(&self) -> SessionError {
        let mut state = self.state();
        state.make_void();
        state.written_version = state.version;
        SessionError::Interrupted
    }

    /// Logs out: clears the data, deletes the record in the store at once and drops the key.
    /// Unloaded, the session may still stand for several of the request's cookies: whichever
    /// of them is live is deleted. If the store fails, the error is returned and the session
    /// is left as it was. A poisoned session can still log out.
    pub async fn flush(&self) -> Result<(), SessionError> {
        let _io = self.inner.io.lock().await;
        let stored_keys = self.state().identity.stored_keys();
        for key in stored_keys {
            self.inner.store.delete(&self.id_of(&key)).await?;
        }
        let mut state = self.state();
        state.make_void();
        state.mark_modified();
        Ok(())
    }

    /// Gives the session a new key and keeps its data (at login, against session fixation).
    /// The next save creates the record under the new key and deletes the old one; if a
    /// concurrent logout deleted the old one first, that save fails as
    /// [`SessionError::Interrupted`] and nothing stays live.
    pub async fn cycle_key(&self) -> Result<(), SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        state.identity = match std::mem::replace(&mut state.identity, Identity::Fresh) {
            Identity::Stored { key, .. } => Identity::Rotating {
                old: key,
                new: SessionKey::generate(),
            },
            Identity::Rotating { old, .. } => Identity::Rotating {
                old,
                new: SessionKey::generate(),
            },
            // Never stored: the first save mints a fresh key anyway.
            unsaved @ (Identity::Fresh | Identity::FromCookie(_)) => unsaved,
        };
        state.mark_modified();
        Ok(())
    }
}
