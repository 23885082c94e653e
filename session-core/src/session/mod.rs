//! `Session`: the handle request code reads and writes, with Django's `SessionBase` rules.
//!
//! - this file: the handle, how a request's cookies become one, and what it can tell;
//! - `entries`: the dict API and the test-cookie helpers;
//! - `expiry`: the session's own expiry setting;
//! - `owner`: who the session belongs to, and the owner's other sessions;
//! - `persist`: loading, the end-of-request commit, save, flush and key rotation;
//! - `state`: the state behind the handle.

mod entries;
mod expiry;
mod owner;
mod persist;
mod state;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{SessionConfig, SessionKey, SessionStore};
pub(crate) use persist::Committed;
use state::{Identity, State};

pub use entries::{TEST_COOKIE_NAME, TEST_COOKIE_VALUE};

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
/// assert_eq!(session.expiry_age().await?, time::Duration::hours(1));
///
/// session.cycle_key().await?; // at login, against session fixation
/// session.save().await?;
/// session.flush().await?; // at logout: the record is deleted at once
/// assert!(session.session_key().is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SessionStore>,
    /// For a client-side session, the request's jar (also `store`): the cookie to send is
    /// its record.
    jar: Option<Arc<crate::client_side::CookieJar>>,
    config: Arc<SessionConfig>,
    state: Mutex<State>,
    /// Serialises store I/O of this session (load, save, flush) across its clones.
    io: tokio::sync::Mutex<()>,
}

/// What the request lifecycle (and tests) need to know about a session beyond Django's
/// `accessed`/`modified`: see [`Session::inspect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// No key and no entries: new and untouched, flushed, or its cookie named nothing live
    /// (Django's `is_empty()`).
    pub void: bool,
    /// The request carried a session cookie, valid or not.
    pub had_cookie: bool,
    /// A store write succeeded during this request, so the cookie must be sent.
    pub saved: bool,
    /// A failed load poisoned the session: it writes nothing in this request.
    pub poisoned: bool,
}

impl Session {
    /// A new session with no key: it gets one when first saved.
    pub fn new(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>) -> Self {
        Self::with_state(store, config, State::new(Identity::Fresh, false))
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
        Self::from_candidates(store, config, key.into_iter().collect())
    }

    /// The session of a request that carried these well-formed session keys, in header
    /// order: the first that names a live, readable record wins, at most [`MAX_CANDIDATES`]
    /// are looked up, and the session is dropped (and its cookie removed by the lifecycle)
    /// only when none loads. An empty list stands for a cookie whose values were all
    /// malformed. No I/O happens here.
    pub fn from_candidates(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
        mut candidates: Vec<SessionKey>,
    ) -> Self {
        candidates.truncate(MAX_CANDIDATES);
        let identity = if candidates.is_empty() {
            Identity::Fresh
        } else {
            Identity::FromCookie(candidates)
        };
        Self::with_state(store, config, State::new(identity, true))
    }

    /// A client-side session over the request's jar: `candidates` are the internal keys of
    /// the records the request's cookies opened to (at most one), `had_cookie` whether the
    /// request carried the cookie at all.
    pub(crate) fn client_side(
        jar: Arc<crate::client_side::CookieJar>,
        config: Arc<SessionConfig>,
        candidate: Option<SessionKey>,
        had_cookie: bool,
    ) -> Self {
        let identity = match candidate {
            Some(key) => Identity::FromCookie(vec![key]),
            None => Identity::Fresh,
        };
        let mut session = Self::with_state(jar.clone(), config, State::new(identity, had_cookie));
        if let Some(inner) = Arc::get_mut(&mut session.inner) {
            inner.jar = Some(jar);
        }
        session
    }

    /// For a client-side session, the sealed cookie value of its current record.
    pub(crate) fn sealed_cookie(&self) -> Option<String> {
        let jar = self.inner.jar.as_ref()?;
        jar.sealed(&self.session_key()?.record_id())
    }

    /// Whether the session lives in its cookie (a client-side engine) rather than a store.
    pub fn is_client_side(&self) -> bool {
        self.inner.jar.is_some()
    }

    fn with_state(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>, state: State) -> Self {
        Self {
            inner: Arc::new(Inner {
                jar: None,
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

    /// The session key the client holds or will hold after the next save (a new one after
    /// [`cycle_key`](Self::cycle_key)); `None` for a new, flushed or dropped session
    /// (Django's `session_key`). For a client-side session
    /// ([`SessionManager::client_side`](crate::SessionManager::client_side)) it is an
    /// internal handle that never leaves the process: the cookie carries the sealed data.
    pub fn session_key(&self) -> Option<SessionKey> {
        self.state().identity.key().cloned()
    }

    /// The old name of [`session_key`](Self::session_key), kept for one release.
    #[deprecated(since = "0.2.0", note = "renamed to `session_key` (Django's name)")]
    #[doc(hidden)]
    pub fn key(&self) -> Option<SessionKey> {
        self.session_key()
    }

    /// Whether the session's data was read or written (Django's `accessed`).
    pub fn is_accessed(&self) -> bool {
        self.state().accessed
    }

    /// Whether the session changed since it was loaded or last saved (Django's `modified`).
    pub fn is_modified(&self) -> bool {
        self.state().is_modified()
    }

    /// Old inspector, kept for one release: `inspect().void`.
    #[deprecated(since = "0.2.0", note = "use `inspect().void`")]
    #[doc(hidden)]
    pub fn is_void(&self) -> bool {
        self.inspect().void
    }

    /// Old inspector, kept for one release: `inspect().had_cookie`.
    #[deprecated(since = "0.2.0", note = "use `inspect().had_cookie`")]
    #[doc(hidden)]
    pub fn had_cookie(&self) -> bool {
        self.inspect().had_cookie
    }

    /// Old inspector, kept for one release: `inspect().saved`.
    #[deprecated(since = "0.2.0", note = "use `inspect().saved`")]
    #[doc(hidden)]
    pub fn is_saved(&self) -> bool {
        self.inspect().saved
    }

    /// Old inspector, kept for one release: `inspect().poisoned`.
    #[deprecated(since = "0.2.0", note = "use `inspect().poisoned`")]
    #[doc(hidden)]
    pub fn is_poisoned(&self) -> bool {
        self.inspect().poisoned
    }

    /// What the request lifecycle needs to know: void, had a cookie, saved, poisoned. For
    /// framework adapters and tests; handlers rarely need it.
    pub fn inspect(&self) -> Inspection {
        let state = self.state();
        Inspection {
            void: state.is_void(),
            had_cookie: state.had_cookie,
            saved: state.saved,
            poisoned: state.is_poisoned(),
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("key", &state.identity.key())
            .field("loaded", &matches!(state.data, state::Data::Loaded { .. }))
            .field("accessed", &state.accessed)
            .field("modified", &state.is_modified())
            .field("expiry", &state.expiry())
            .finish_non_exhaustive()
    }
}
