//! The state behind a [`Session`](super::Session) handle: who it is to the store, what it
//! holds, and what changed. Each fact lives in one place, so impossible combinations (a
//! rotation without a stored record, data on a poisoned session) cannot be written.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::{Expiry, Ownership, SessionError, SessionKey};

/// Who the session is, as far as the store is concerned.
#[derive(Debug, Clone)]
pub(super) enum Identity {
    /// No key: new, flushed, or its cookie named nothing live. A save mints one.
    Fresh,
    /// The request's well-formed session cookies (one to `MAX_CANDIDATES`), not looked up yet.
    FromCookie(Vec<SessionKey>),
    /// A record under `key` is in the store, expiring at `expires_at`.
    Stored {
        key: SessionKey,
        expires_at: OffsetDateTime,
    },
    /// After `cycle_key` on a stored session: the next save creates `new` and deletes `old`.
    Rotating { old: SessionKey, new: SessionKey },
}

impl Identity {
    /// The key the client holds, or will hold after the next save.
    pub(super) fn key(&self) -> Option<&SessionKey> {
        match self {
            Self::Fresh => None,
            Self::FromCookie(candidates) => candidates.first(),
            Self::Stored { key, .. } => Some(key),
            Self::Rotating { new, .. } => Some(new),
        }
    }

    /// The keys whose records a logout must delete.
    pub(super) fn stored_keys(&self) -> Vec<SessionKey> {
        match self {
            Self::Fresh => Vec::new(),
            Self::FromCookie(candidates) => candidates.clone(),
            Self::Stored { key, .. } => vec![key.clone()],
            Self::Rotating { old, .. } => vec![old.clone()],
        }
    }
}

/// What the session holds.
#[derive(Debug, Clone)]
pub(super) enum Data {
    /// Not loaded yet: the first access loads it.
    Pending,
    /// The entries and the session's own expiry setting.
    Loaded(Loaded),
    /// The load failed (store down): no data access, nothing written in this request.
    Poisoned,
}

/// A loaded session's contents.
#[derive(Debug, Clone, Default)]
pub(super) struct Loaded {
    pub(super) entries: Map<String, Value>,
    pub(super) expiry: Expiry,
    /// Who the session belongs to, kept beside the record (carried by `cycle_key`, dropped
    /// by `flush`).
    pub(super) ownership: Option<Ownership>,
}

/// The client details noted in this request (recorded only under `record_client`).
#[derive(Debug, Clone, Default)]
pub(super) struct Client {
    pub(super) user_agent: Option<String>,
    pub(super) ip: Option<String>,
}

/// The whole state, behind the handle's lock.
#[derive(Debug)]
pub(super) struct State {
    pub(super) identity: Identity,
    pub(super) data: Data,
    /// The request carried a session cookie, valid or not (a fact of the request).
    pub(super) had_cookie: bool,
    /// The data was read or written.
    pub(super) accessed: bool,
    /// Bumped on every change.
    pub(super) version: u64,
    /// The `version` the store holds (or, for a session never written, the one it started
    /// with): the session is modified while the two differ.
    pub(super) written_version: u64,
    /// A write succeeded during this request: the cookie must be (re)sent.
    pub(super) saved: bool,
    /// The client details noted in this request.
    pub(super) client: Client,
}

impl State {
    pub(super) fn new(identity: Identity, had_cookie: bool) -> Self {
        Self {
            identity,
            data: Data::Pending,
            had_cookie,
            accessed: false,
            version: 0,
            written_version: 0,
            saved: false,
            client: Client::default(),
        }
    }

    pub(super) fn is_modified(&self) -> bool {
        self.version != self.written_version
    }

    pub(super) fn is_poisoned(&self) -> bool {
        matches!(self.data, Data::Poisoned)
    }

    /// No key and no entries (Django's `is_empty()`).
    pub(super) fn is_void(&self) -> bool {
        let no_entries = match &self.data {
            Data::Loaded(loaded) => loaded.entries.is_empty(),
            Data::Pending | Data::Poisoned => true,
        };
        matches!(self.identity, Identity::Fresh) && no_entries
    }

    /// The contents of a loaded session; `Poisoned` otherwise (a failed load, or a caller
    /// that did not load first).
    pub(super) fn loaded(&mut self) -> Result<&mut Loaded, SessionError> {
        match &mut self.data {
            Data::Loaded(loaded) => Ok(loaded),
            Data::Pending | Data::Poisoned => Err(SessionError::Poisoned),
        }
    }

    /// The expiry setting of a loaded session (`Default` otherwise).
    pub(super) fn expiry(&self) -> Expiry {
        match &self.data {
            Data::Loaded(loaded) => loaded.expiry,
            Data::Pending | Data::Poisoned => Expiry::Default,
        }
    }

    pub(super) fn mark_modified(&mut self) {
        self.accessed = true;
        self.version = self.version.wrapping_add(1);
    }

    /// Forget everything: no key, no data, nothing stored.
    pub(super) fn make_void(&mut self) {
        self.identity = Identity::Fresh;
        self.data = Data::Loaded(Loaded::default());
    }
}
