//! A session's owner ("log out everywhere"): setting it at login, listing and ending the
//! owner's other sessions, through the store's [`OwnerIndex`](crate::OwnerIndex).

use time::OffsetDateTime;

use super::Session;
use super::state::{Identity, State};
use crate::{OwnedSession, OwnerIndex, Ownership, RecordId, SessionError};

impl Session {
    /// The store's owner index, or [`SessionError::NoOwnerIndex`].
    fn owner_index(&self) -> Result<&dyn OwnerIndex, SessionError> {
        self.inner
            .store
            .owner_index()
            .ok_or(SessionError::NoOwnerIndex)
    }

    /// Sets who the session belongs to: a user id at login, `None` at logout. The owner is
    /// kept beside the record, not in the data; it survives [`cycle_key`](Self::cycle_key)
    /// (call both at login, in either order) and goes with [`flush`](Self::flush). Setting
    /// the current owner again changes nothing; another owner starts a new
    /// [`Ownership`] (created now).
    ///
    /// Fails with [`SessionError::NoOwnerIndex`] when the store keeps no owner index (a
    /// client-side engine, say), and [`SessionError::InvalidOwner`] for an empty id, one over
    /// [`MAX_OWNER_LEN`](crate::owner::MAX_OWNER_LEN) bytes or one with control characters.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::{MemoryStore, Session, SessionConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::SessionError> {
    /// let store = Arc::new(MemoryStore::new());
    /// let config = Arc::new(SessionConfig::default());
    /// let phone = Session::new(store.clone(), config.clone());
    /// phone.set_owner(Some("42")).await?;
    /// phone.save().await?;
    ///
    /// let laptop = Session::new(store.clone(), config);
    /// laptop.cycle_key().await?;
    /// laptop.set_owner(Some("42")).await?;
    /// laptop.save().await?;
    /// assert_eq!(laptop.other_sessions().await?.len(), 1); // the phone
    ///
    /// assert_eq!(laptop.end_other_sessions().await?, 1); // "sign out everywhere else"
    /// assert!(laptop.other_sessions().await?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set_owner(&self, owner: Option<&str>) -> Result<(), SessionError> {
        if owner.is_some() {
            self.owner_index()?;
        }
        let ownership = owner
            .map(|owner| Ownership::new(owner, OffsetDateTime::now_utc()))
            .transpose()
            .map_err(SessionError::InvalidOwner)?;
        self.ensure_loaded().await?;
        let mut state = self.state();
        let loaded = state.loaded()?;
        let same = match (&loaded.ownership, &ownership) {
            (Some(current), Some(new)) => current.owner() == new.owner(),
            (None, None) => true,
            _ => false,
        };
        if !same {
            loaded.ownership = ownership;
            state.mark_modified();
        }
        Ok(())
    }

    /// Who the session belongs to, if anyone.
    pub async fn owner(&self) -> Result<Option<String>, SessionError> {
        Ok(self
            .ownership()
            .await?
            .map(|ownership| ownership.owner().to_owned()))
    }

    /// The session's owner with when it was created and last seen (and the client details,
    /// when recorded).
    pub async fn ownership(&self) -> Result<Option<Ownership>, SessionError> {
        self.ensure_loaded().await?;
        Ok(self.state().loaded()?.ownership.clone())
    }

    /// The record id of this session as stored now (or as it will be after a pending
    /// [`cycle_key`](Self::cycle_key) is saved): what [`OwnedSession::id`] is compared with to
    /// mark the current session in a list. Never the key itself.
    pub fn record_id(&self) -> Option<RecordId> {
        self.session_key().map(|key| self.id_of(&key))
    }

    /// Every live session of this session's owner, this one included, most recently seen
    /// first; empty when the session has no owner.
    pub async fn owner_sessions(&self) -> Result<Vec<OwnedSession>, SessionError> {
        let index = self.owner_index()?;
        let Some(owner) = self.owner().await? else {
            return Ok(Vec::new());
        };
        Ok(index.sessions_of(&owner).await?)
    }

    /// The owner's other live sessions ("where else am I logged in?"), most recently seen
    /// first; empty when the session has no owner.
    pub async fn other_sessions(&self) -> Result<Vec<OwnedSession>, SessionError> {
        let mut sessions = self.owner_sessions().await?;
        let current = self.current_ids();
        sessions.retain(|session| !current.contains(&session.id));
        Ok(sessions)
    }

    /// Ends every other session of this session's owner ("sign out everywhere else"), keeping
    /// this one; returns how many records went. A request still in flight on one of them
    /// cannot save it back: its save fails as [`SessionError::Interrupted`]. Nothing happens
    /// when the session has no owner.
    pub async fn end_other_sessions(&self) -> Result<u64, SessionError> {
        let index = self.owner_index()?;
        let Some(owner) = self.owner().await? else {
            return Ok(0);
        };
        let keep = self.stored_id();
        let ended = index.delete_sessions_of(&owner, keep.as_ref()).await?;
        Ok(ended.len() as u64)
    }

    /// Notes the client's `User-Agent` for this request: recorded in an owned session's
    /// [`Ownership`] only under [`SessionConfig::record_client`](crate::SessionConfig::record_client).
    /// The framework adapters call it.
    pub fn set_user_agent(&self, user_agent: Option<&str>) {
        if self.config().record_client {
            self.state().client.user_agent = user_agent.map(truncated);
        }
    }

    /// Notes the client's IP address for this request (a handler that knows the peer, or a
    /// trusted proxy's header, gives it): recorded in an owned session's [`Ownership`] only
    /// under [`SessionConfig::record_client`](crate::SessionConfig::record_client).
    pub fn set_client_ip(&self, ip: impl std::fmt::Display) {
        if self.config().record_client {
            self.state().client.ip = Some(truncated(&ip.to_string()));
        }
    }

    /// The id of the record stored now (the old one while a rotation is pending).
    fn stored_id(&self) -> Option<RecordId> {
        let key = match &self.state().identity {
            Identity::Stored { key, .. } | Identity::Rotating { old: key, .. } => key.clone(),
            Identity::Fresh | Identity::FromCookie(_) => return None,
        };
        Some(self.id_of(&key))
    }

    /// The ids that stand for this session: the stored record's and a pending rotation's.
    fn current_ids(&self) -> Vec<RecordId> {
        let keys: Vec<_> = match &self.state().identity {
            Identity::Stored { key, .. } => vec![key.clone()],
            Identity::Rotating { old, new } => vec![old.clone(), new.clone()],
            Identity::Fresh | Identity::FromCookie(_) => Vec::new(),
        };
        keys.iter().map(|key| self.id_of(key)).collect()
    }

    /// Whether an unchanged, owned, stored session should write its `last_seen` now.
    pub(super) fn seen_due_in(&self, state: &State, now: OffsetDateTime) -> bool {
        let super::state::Data::Loaded(loaded) = &state.data else {
            return false;
        };
        let Some(ownership) = &loaded.ownership else {
            return false;
        };
        matches!(state.identity, Identity::Stored { .. })
            && self.inner.store.owner_index().is_some()
            && now - ownership.last_seen() >= self.config().last_seen_interval
    }

    /// Whether the lifecycle should write this session's `last_seen` (see
    /// [`seen_due_in`](Self::seen_due_in)).
    pub(crate) fn seen_due(&self) -> bool {
        let state = self.state();
        self.seen_due_in(&state, OffsetDateTime::now_utc())
    }

    /// Puts the client details noted in this request into `ownership`.
    pub(super) fn note_client_in(&self, ownership: &mut Ownership) {
        if !self.config().record_client {
            return;
        }
        let client = self.state().client.clone();
        let user_agent = client
            .user_agent
            .or_else(|| ownership.user_agent().map(str::to_owned));
        let ip = client
            .ip
            .or_else(|| ownership.client_ip().map(str::to_owned));
        ownership.set_client(user_agent, ip);
    }
}

/// Client details are display strings: at most 256 bytes (on a character boundary), so a
/// crafted header cannot bloat every record.
fn truncated(value: &str) -> String {
    const MAX: usize = 256;
    let mut end = value.len().min(MAX);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}
