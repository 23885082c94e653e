//! `Session`: the handle request code reads and writes, with Django's `SessionBase` rules.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::codec;
use crate::{Expiry, Record, SessionConfig, SessionError, SessionKey, SessionStore, StoreError};

/// The entry Django's test-cookie helpers use.
pub const TEST_COOKIE_NAME: &str = "testcookie";
/// The value Django's test-cookie helpers store.
pub const TEST_COOKIE_VALUE: &str = "worked";

/// How many fresh keys `create` tries before giving up on [`StoreError::DuplicateId`].
const CREATE_ATTEMPTS: usize = 10;

/// How many of a request's session cookies are tried (one store lookup each) before the
/// session counts as unknown. A request may carry several cookies of the same name (one set
/// for a parent domain, one for the host); the first that loads wins.
pub const MAX_CANDIDATES: usize = 3;

/// One client's session: a cheap, cloneable handle usable from any task.
///
/// It loads lazily: nothing touches the store until the first data access, so a request that
/// never reads its session does no I/O. Values go in and out through serde, and a stored value
/// that does not deserialize into the asked type is an error, never a panic.
///
/// Reads set [`is_accessed`](Self::is_accessed); changes set it and
/// [`is_modified`](Self::is_modified). Unlike Django, writing a value equal to the current one,
/// or popping a missing entry, does not mark the session modified.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Expiry, MemoryStore, Session, SessionConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::SessionError> {
/// let session = Session::new(Arc::new(MemoryStore::new()), Arc::new(SessionConfig::default()));
///
/// session.insert("user_id", 123).await?;
/// session.insert("username", "john_doe").await?;
/// assert_eq!(session.get::<u32>("user_id").await?, Some(123));
/// assert_eq!(session.get::<String>("username").await?.as_deref(), Some("john_doe"));
///
/// session.set_expiry(Expiry::Inactivity(time::Duration::hours(1))).await?;
/// assert_eq!(session.expiry_age().await?, 3600);
///
/// session.cycle_key().await?; // at login, against session fixation
/// session.save().await?;
/// session.flush().await?; // at logout: the record is deleted at once
/// assert!(session.key().is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    state: Mutex<State>,
    /// Serialises store I/O of this session (load, save, flush) across its clones.
    io: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// The key the client will hold: the cookie's until it is dropped or rotated. Before the
    /// first load, the first of the request's well-formed session cookies.
    key: Option<SessionKey>,
    /// Before the first load: the request's other well-formed session cookies, tried in
    /// order when `key` does not load (see [`MAX_CANDIDATES`]).
    fallback_keys: Vec<SessionKey>,
    /// After `cycle_key`: the old key, whose record the next save deletes.
    rotated_from: Option<SessionKey>,
    /// The entries; `None` until loaded.
    entries: Option<Map<String, Value>>,
    /// The session's own expiry setting (loaded with the entries).
    expiry: Expiry,
    /// A record for `key` (or `rotated_from`, during a rotation) is known to be in the store.
    stored: bool,
    /// The expiry of that record, as loaded or last written.
    stored_expires_at: Option<OffsetDateTime>,
    accessed: bool,
    modified: bool,
    /// `set_expiry` was called since the last write: a full update is needed.
    expiry_changed: bool,
    /// Bumped on every change, so a save knows whether changes arrived while it wrote.
    version: u64,
    /// A load failed: the session refuses data access and writes nothing.
    poisoned: bool,
    /// A write succeeded: the cookie must be (re)sent.
    saved: bool,
    /// The request carried a session cookie (valid or not).
    cookie_present: bool,
}

impl State {
    fn entries_mut(&mut self) -> &mut Map<String, Value> {
        self.entries.get_or_insert_with(Map::new)
    }

    fn mark_modified(&mut self) {
        self.accessed = true;
        self.modified = true;
        self.version = self.version.wrapping_add(1);
    }

    /// Forget everything: no key, no data, nothing stored.
    fn make_void(&mut self) {
        self.key = None;
        self.fallback_keys.clear();
        self.rotated_from = None;
        self.entries = Some(Map::new());
        self.expiry = Expiry::Default;
        self.stored = false;
        self.stored_expires_at = None;
        self.expiry_changed = false;
        self.poisoned = false;
    }
}

/// What the end-of-request commit did, for the cookie the response gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// The record is current: send the cookie with the session's expiry age.
    Current,
    /// The expiry-only write was skipped (touch threshold): the record expires at this moment.
    Kept(OffsetDateTime),
    /// The record was gone when its expiry was to be renewed: remove the cookie.
    Gone,
}

/// The write a save needs.
enum Write {
    /// A new record under a fresh key.
    Create,
    /// A new record under `state.key`, then delete the old one.
    Rotate { old: SessionKey },
    /// Replace payload and expiry of the record under `state.key`.
    Update { key: SessionKey },
}

impl Session {
    /// A new session with no key: it gets one when first saved.
    pub fn new(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>) -> Self {
        Self::with_state(store, config, State::default())
    }

    /// The session a request's cookie names. A value that is not a well-formed key gives a new
    /// session (and a warning); a well-formed key that the store does not know is dropped at
    /// load, never adopted. No I/O happens here.
    pub fn from_cookie(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
        cookie_value: &str,
    ) -> Self {
        let key = SessionKey::parse(cookie_value);
        if key.is_none() {
            tracing::warn!(
                target: "session::security",
                length = cookie_value.len(),
                "session cookie is not a valid session key; starting a new session"
            );
        }
        Self::with_state(
            store,
            config,
            State {
                key,
                cookie_present: true,
                ..State::default()
            },
        )
    }

    /// The session of a request that carried these well-formed session keys, in header
    /// order: the first that names a live, readable record wins, at most [`MAX_CANDIDATES`]
    /// are looked up, and the session is dropped (and its cookie removed by the lifecycle)
    /// only when none loads. An empty list stands for a cookie whose values were all
    /// malformed. No I/O happens here.
    pub fn from_candidates(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
        candidates: Vec<SessionKey>,
    ) -> Self {
        let mut candidates = candidates.into_iter();
        let key = candidates.next();
        Self::with_state(
            store,
            config,
            State {
                key,
                fallback_keys: candidates.take(MAX_CANDIDATES - 1).collect(),
                cookie_present: true,
                ..State::default()
            },
        )
    }

    fn with_state(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>, state: State) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                state: Mutex::new(state),
                io: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation of `State` completes under the lock without calling user code, so a
        // poisoned lock (a panic elsewhere while held) still guards a consistent state.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The configuration this session follows.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The key the client holds or will hold after the next save (a new one after
    /// [`cycle_key`](Self::cycle_key)); `None` for a new, flushed or dropped session.
    pub fn key(&self) -> Option<SessionKey> {
        self.state().key.clone()
    }

    /// Whether the session's data was read or written.
    pub fn is_accessed(&self) -> bool {
        self.state().accessed
    }

    /// Whether the session changed since it was loaded or last saved.
    pub fn is_modified(&self) -> bool {
        self.state().modified
    }

    /// Whether the session has no key and no entries: new and untouched, flushed, or its
    /// cookie named nothing the store knows (Django's `is_empty()`).
    pub fn is_void(&self) -> bool {
        let state = self.state();
        state.key.is_none()
            && state.rotated_from.is_none()
            && state.entries.as_ref().is_none_or(Map::is_empty)
    }

    /// Whether a store write succeeded during this request, so the cookie must be sent.
    pub fn is_saved(&self) -> bool {
        self.state().saved
    }

    /// Whether a failed load poisoned the session; it then writes nothing.
    pub fn is_poisoned(&self) -> bool {
        self.state().poisoned
    }

    /// Whether the request carried a session cookie, valid or not.
    pub fn had_cookie(&self) -> bool {
        self.state().cookie_present
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
            let state = self.state();
            if state.poisoned {
                return Err(SessionError::Poisoned);
            }
            let needs_full_write = state.modified
                || state.expiry_changed
                || state.rotated_from.is_some()
                || !state.stored;
            match (&state.key, state.expiry) {
                _ if needs_full_write => None,
                _ if !renew => return Ok(Committed::Current),
                // A fixed moment does not move: nothing to renew.
                (_, Expiry::At(_)) | (None, _) => return Ok(Committed::Current),
                (Some(key), expiry) => Some((key.clone(), expiry, state.stored_expires_at)),
            }
        };
        let Some((key, expiry, stored_expires_at)) = renewal else {
            self.write_full().await?;
            return Ok(Committed::Current);
        };
        let cookie_age = self.inner.config.cookie_age;
        if let (Some(fraction), Some(stored)) = (touch_threshold, stored_expires_at) {
            let lifetime = expiry.age(cookie_age, now) as f64;
            let remaining = (stored - now).as_seconds_f64();
            if remaining > fraction * lifetime {
                return Ok(Committed::Kept(stored));
            }
        }
        let expires_at = crate::record::truncate_to_millis(expiry.date(cookie_age, now));
        match self.inner.store.touch(&key.record_id(), expires_at).await {
            Ok(()) => {
                let mut state = self.state();
                state.stored_expires_at = Some(expires_at);
                state.saved = true;
                Ok(Committed::Current)
            }
            Err(StoreError::NotFound) => {
                let mut state = self.state();
                state.make_void();
                Ok(Committed::Gone)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Loads the entries on first use. Marks the session accessed.
    async fn ensure_loaded(&self) -> Result<(), SessionError> {
        {
            let mut state = self.state();
            state.accessed = true;
            if state.poisoned {
                return Err(SessionError::Poisoned);
            }
            if state.entries.is_some() {
                return Ok(());
            }
        }
        let _io = self.inner.io.lock().await;
        let (key, fallbacks) = {
            let mut state = self.state();
            if state.poisoned {
                return Err(SessionError::Poisoned);
            }
            if state.entries.is_some() {
                return Ok(());
            }
            match state.key.clone() {
                Some(key) => (key, std::mem::take(&mut state.fallback_keys)),
                None => {
                    state.entries = Some(Map::new());
                    return Ok(());
                }
            }
        };
        let mut candidates = Some(key).into_iter().chain(fallbacks);
        loop {
            let Some(key) = candidates.next() else {
                self.state().make_void();
                return Ok(());
            };
            match self.inner.store.load(&key.record_id()).await {
                Ok(Some(record)) => match codec::decode(record.payload()) {
                    Ok(data) => {
                        let mut state = self.state();
                        state.key = Some(key);
                        state.fallback_keys.clear();
                        state.entries = Some(data.entries);
                        state.expiry = data.expiry;
                        state.stored = true;
                        state.stored_expires_at = Some(record.expires_at());
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
                    self.state().poisoned = true;
                    return Err(error.into());
                }
            }
        }
    }

    /// Reads the state after loading it.
    async fn read<R>(&self, f: impl FnOnce(&Map<String, Value>) -> R) -> Result<R, SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        Ok(f(state.entries_mut()))
    }

    /// The value of an entry, deserialized into `T`; `None` when absent.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match self.get_value(key).await? {
            None => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|source| {
                SessionError::Deserialize {
                    key: key.to_owned(),
                    source,
                }
            }),
        }
    }

    /// The raw JSON value of an entry.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, SessionError> {
        self.read(|entries| entries.get(key).cloned()).await
    }

    /// Sets an entry. Writing a value equal to the current one does not mark the session
    /// modified.
    pub async fn insert(&self, key: &str, value: impl Serialize) -> Result<(), SessionError> {
        let value = to_value(key, &value)?;
        self.ensure_loaded().await?;
        let mut state = self.state();
        if state.entries_mut().get(key) != Some(&value) {
            state.entries_mut().insert(key.to_owned(), value);
            state.mark_modified();
        }
        Ok(())
    }

    /// Removes an entry and returns its raw value; removing a missing entry changes nothing.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        let removed = state.entries_mut().remove(key);
        if removed.is_some() {
            state.mark_modified();
        }
        Ok(removed)
    }

    /// Removes an entry and returns it deserialized into `T`. A missing entry gives `None` and
    /// does not mark the session modified; a value of another type is an error and stays in
    /// the session.
    pub async fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        let Some(value) = state.entries_mut().get(key) else {
            return Ok(None);
        };
        let typed = T::deserialize(value).map_err(|source| SessionError::Deserialize {
            key: key.to_owned(),
            source,
        })?;
        state.entries_mut().remove(key);
        state.mark_modified();
        Ok(Some(typed))
    }

    /// Returns the entry's value, first inserting `default` if it is absent (Django's
    /// `setdefault`); only an insertion marks the session modified.
    pub async fn set_default<T>(&self, key: &str, default: T) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
    {
        let default_value = to_value(key, &default)?;
        self.ensure_loaded().await?;
        let mut state = self.state();
        match state.entries_mut().get(key) {
            Some(value) => T::deserialize(value).map_err(|source| SessionError::Deserialize {
                key: key.to_owned(),
                source,
            }),
            None => {
                state.entries_mut().insert(key.to_owned(), default_value);
                state.mark_modified();
                Ok(default)
            }
        }
    }

    /// Sets several entries at once (Django's `update`). Either all values serialize and are
    /// set, or none is.
    pub async fn update<I, K, V>(&self, entries: I) -> Result<(), SessionError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Serialize,
    {
        let values = entries
            .into_iter()
            .map(|(key, value)| {
                let key = key.into();
                let value = to_value(&key, &value)?;
                Ok((key, value))
            })
            .collect::<Result<Vec<_>, SessionError>>()?;
        self.ensure_loaded().await?;
        let mut state = self.state();
        let mut changed = false;
        for (key, value) in values {
            if state.entries_mut().get(&key) != Some(&value) {
                state.entries_mut().insert(key, value);
                changed = true;
            }
        }
        if changed {
            state.mark_modified();
        }
        Ok(())
    }

    /// Whether the session holds an entry under `key`.
    pub async fn contains_key(&self, key: &str) -> Result<bool, SessionError> {
        self.read(|entries| entries.contains_key(key)).await
    }

    /// The entry names (in no particular order: databases reorder JSON keys).
    pub async fn keys(&self) -> Result<Vec<String>, SessionError> {
        self.read(|entries| entries.keys().cloned().collect()).await
    }

    /// The raw entry values.
    pub async fn values(&self) -> Result<Vec<Value>, SessionError> {
        self.read(|entries| entries.values().cloned().collect())
            .await
    }

    /// The entries as name and raw value.
    pub async fn entries(&self) -> Result<Vec<(String, Value)>, SessionError> {
        self.read(|entries| {
            entries
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .await
    }

    /// How many entries the session holds.
    pub async fn len(&self) -> Result<usize, SessionError> {
        self.read(Map::len).await
    }

    /// Whether the session holds no entries.
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        self.read(Map::is_empty).await
    }

    /// Removes every entry; the key and the expiry setting stay. Clearing an empty session
    /// changes nothing. Use [`flush`](Self::flush) to log out.
    pub async fn clear(&self) -> Result<(), SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        if !state.entries_mut().is_empty() {
            state.entries_mut().clear();
            state.mark_modified();
        }
        Ok(())
    }

    /// Sets this session's expiry. Always marks the session modified; the setting travels in
    /// the payload and is in force on the next request. [`Expiry::Default`] returns to the
    /// configuration.
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        state.expiry = expiry.normalized();
        state.expiry_changed = true;
        state.mark_modified();
        Ok(())
    }

    /// The session's own expiry setting.
    pub async fn expiry(&self) -> Result<Expiry, SessionError> {
        self.ensure_loaded().await?;
        Ok(self.state().expiry)
    }

    /// Seconds until the session expires, counted from now and floored, as Django's
    /// `get_expiry_age`: the cookie age by default, the inactivity age, or the time left until
    /// a fixed moment (negative once it has passed).
    pub async fn expiry_age(&self) -> Result<i64, SessionError> {
        let expiry = self.expiry().await?;
        Ok(expiry.age(self.inner.config.cookie_age, OffsetDateTime::now_utc()))
    }

    /// When the session expires if saved now, as Django's `get_expiry_date`.
    pub async fn expiry_date(&self) -> Result<OffsetDateTime, SessionError> {
        let expiry = self.expiry().await?;
        Ok(expiry.date(self.inner.config.cookie_age, OffsetDateTime::now_utc()))
    }

    /// Whether the cookie is dropped when the browser closes, as Django's
    /// `get_expire_at_browser_close`.
    pub async fn expire_at_browser_close(&self) -> Result<bool, SessionError> {
        let expiry = self.expiry().await?;
        Ok(expiry.at_browser_close(self.inner.config.expire_at_browser_close))
    }

    /// Stores Django's test value, to check on the next request that the client keeps cookies.
    pub async fn set_test_cookie(&self) -> Result<(), SessionError> {
        self.insert(TEST_COOKIE_NAME, TEST_COOKIE_VALUE).await
    }

    /// Whether the test value set by [`set_test_cookie`](Self::set_test_cookie) came back.
    pub async fn test_cookie_worked(&self) -> Result<bool, SessionError> {
        let value = self.get_value(TEST_COOKIE_NAME).await?;
        Ok(value.as_ref().and_then(Value::as_str) == Some(TEST_COOKIE_VALUE))
    }

    /// Removes the test value.
    pub async fn delete_test_cookie(&self) -> Result<(), SessionError> {
        self.remove(TEST_COOKIE_NAME).await.map(drop)
    }

    /// Logs out: clears the data, deletes the record in the store at once and drops the key.
    /// If the store fails, the error is returned and the session is left as it was.
    pub async fn flush(&self) -> Result<(), SessionError> {
        let _io = self.inner.io.lock().await;
        // Unloaded, the session may still stand for several of the request's cookies: the
        // user logs out of whichever of them is live.
        let stored_keys: Vec<SessionKey> = {
            let state = self.state();
            let current = state.rotated_from.as_ref().or(state.key.as_ref());
            current
                .into_iter()
                .chain(&state.fallback_keys)
                .cloned()
                .collect()
        };
        for key in stored_keys {
            self.inner.store.delete(&key.record_id()).await?;
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
        if state.stored && state.rotated_from.is_none() {
            state.rotated_from = state.key.take();
        }
        if state.key.is_some() || state.rotated_from.is_some() {
            state.key = Some(SessionKey::generate());
        }
        state.mark_modified();
        Ok(())
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
    pub(crate) async fn write_full(&self) -> Result<(), SessionError> {
        let now = OffsetDateTime::now_utc();
        let (write, payload, expires_at, version) = {
            let state = self.state();
            if state.poisoned {
                return Err(SessionError::Poisoned);
            }
            let write = match (&state.key, &state.rotated_from) {
                (_, Some(old)) => Write::Rotate { old: old.clone() },
                (Some(key), None) if state.stored => Write::Update { key: key.clone() },
                _ => Write::Create,
            };
            let payload =
                codec::encode(state.entries.as_ref().unwrap_or(&Map::new()), state.expiry);
            let expires_at = state.expiry.date(self.inner.config.cookie_age, now);
            (write, payload, expires_at, state.version)
        };
        if let Some(limit) = self.inner.config.max_payload_bytes
            && payload.len() > limit
        {
            return Err(SessionError::TooLarge {
                size: payload.len(),
                limit,
            });
        }

        let key = match write {
            Write::Create => self.create_record(None, &payload, expires_at).await?,
            Write::Rotate { old } => {
                let proposed = self.state().key.clone();
                let new = self.create_record(proposed, &payload, expires_at).await?;
                self.finish_rotation(&old, &new).await?;
                new
            }
            Write::Update { key } => {
                let record = Record::new(key.record_id(), payload, expires_at);
                match self.inner.store.update(&record).await {
                    Ok(()) => key,
                    Err(StoreError::NotFound) => return Err(self.interrupted()),
                    Err(error) => return Err(error.into()),
                }
            }
        };

        let mut state = self.state();
        state.key = Some(key);
        state.rotated_from = None;
        state.stored = true;
        state.stored_expires_at = Some(crate::record::truncate_to_millis(expires_at));
        state.expiry_changed = false;
        state.modified = state.version != version;
        state.saved = true;
        Ok(())
    }

    /// Creates the record under `proposed` (or a fresh key), retrying with fresh keys while
    /// the store reports a live duplicate.
    async fn create_record(
        &self,
        proposed: Option<SessionKey>,
        payload: &str,
        expires_at: OffsetDateTime,
    ) -> Result<SessionKey, SessionError> {
        let mut key = proposed.unwrap_or_else(SessionKey::generate);
        for _ in 0..CREATE_ATTEMPTS {
            let record = Record::new(key.record_id(), payload, expires_at);
            match self.inner.store.create(&record).await {
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
        let old_was_live = match self.inner.store.delete(&old.record_id()).await {
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
        if let Err(error) = self.inner.store.delete(&key.record_id()).await {
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
        state.modified = false;
        SessionError::Interrupted
    }
}

fn to_value(key: &str, value: &impl Serialize) -> Result<Value, SessionError> {
    serde_json::to_value(value).map_err(|source| SessionError::Serialize {
        key: key.to_owned(),
        source,
    })
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("key", &state.key)
            .field("loaded", &state.entries.is_some())
            .field("accessed", &state.accessed)
            .field("modified", &state.modified)
            .field("expiry", &state.expiry)
            .finish_non_exhaustive()
    }
}
