//! Who a session belongs to, and the index that lists and ends a user's sessions ("log out
//! everywhere").
//!
//! An owner (a user id) is kept beside a record, never in the session's data: stores that
//! implement [`OwnerIndex`] persist it with the record and can list or delete an owner's
//! sessions by record id. The session layer sets it with
//! [`Session::set_owner`](crate::Session::set_owner), carries it across `cycle_key`, drops it
//! with `flush`, and refreshes its `last_seen` at most once per
//! [`SessionConfig::last_seen_interval`](crate::SessionConfig::last_seen_interval).
//!
//! The index is a capability of its own, found through
//! [`SessionStore::owner_index`](crate::SessionStore::owner_index), so a minimal store
//! stays minimal. It works with record ids only: a list of sessions can be shown to their
//! owner without giving any session key away.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::record::{from_unix_millis, truncate_to_millis, unix_millis};
use crate::{RecordId, StoreError};

/// The longest owner id accepted, in bytes: room for any user id (a UUID, an email address),
/// and small enough for an indexed SQL column.
pub const MAX_OWNER_LEN: usize = 128;

/// Checks an owner id: 1 to [`MAX_OWNER_LEN`] bytes, no control characters.
pub fn validate_owner(owner: &str) -> Result<(), String> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
        return Err(format!(
            "an owner id must be 1 to {MAX_OWNER_LEN} bytes, not {}",
            owner.len()
        ));
    }
    if owner.chars().any(char::is_control) {
        return Err("an owner id must not hold control characters".to_owned());
    }
    Ok(())
}

/// A fixed-length name for an owner id (its hex SHA-256), for stores that put the owner in a
/// file or key name: any owner id becomes 64 safe characters.
pub fn owner_digest(owner: &str) -> String {
    crate::key::sha256_hex(owner)
}

/// The owner of a stored session and what the layer knows of it. Kept beside the record (see
/// [`Record::ownership`](crate::Record::ownership)); moments are UTC, whole milliseconds.
///
/// `user_agent` and `client_ip` are personal data: they are recorded only when
/// [`SessionConfig::record_client`](crate::SessionConfig::record_client) is on (off by
/// default), and are then shown to the owner in their list of sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    owner: String,
    created_at: OffsetDateTime,
    last_seen: OffsetDateTime,
    user_agent: Option<String>,
    client_ip: Option<String>,
}

/// The stored form: short field names, Unix milliseconds.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(rename = "o", borrow)]
    owner: std::borrow::Cow<'a, str>,
    #[serde(rename = "c")]
    created_at: i64,
    #[serde(rename = "s")]
    last_seen: i64,
    #[serde(
        rename = "ua",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    user_agent: Option<std::borrow::Cow<'a, str>>,
    #[serde(
        rename = "ip",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    client_ip: Option<std::borrow::Cow<'a, str>>,
}

impl Ownership {
    /// A session of `owner` (checked by [`validate_owner`]), created and last seen `now`.
    pub fn new(owner: impl Into<String>, now: OffsetDateTime) -> Result<Self, String> {
        let owner = owner.into();
        validate_owner(&owner)?;
        let now = truncate_to_millis(now);
        Ok(Self {
            owner,
            created_at: now,
            last_seen: now,
            user_agent: None,
            client_ip: None,
        })
    }

    /// The owner id (a user id).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When the owner was set on this session (at login).
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When the session was last written or seen (at most
    /// [`last_seen_interval`](crate::SessionConfig::last_seen_interval) old while it is used).
    pub fn last_seen(&self) -> OffsetDateTime {
        self.last_seen
    }

    /// The client's `User-Agent`, when recorded.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The client's IP address, when recorded.
    pub fn client_ip(&self) -> Option<&str> {
        self.client_ip.as_deref()
    }

    /// Moves `last_seen`.
    pub fn set_last_seen(&mut self, at: OffsetDateTime) {
        self.last_seen = truncate_to_millis(at);
    }

    /// Sets the recorded client details (`None` clears one).
    pub fn set_client(&mut self, user_agent: Option<String>, client_ip: Option<String>) {
        self.user_agent = user_agent;
        self.client_ip = client_ip;
    }

    /// The compact JSON stores keep beside the record.
    pub fn to_json(&self) -> String {
        let stored = Stored {
            owner: self.owner.as_str().into(),
            created_at: unix_millis(self.created_at),
            last_seen: unix_millis(self.last_seen),
            user_agent: self.user_agent.as_deref().map(Into::into),
            client_ip: self.client_ip.as_deref().map(Into::into),
        };
        // A struct of strings and integers always serializes.
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Reads [`to_json`](Self::to_json)'s output back; `None` for anything else (a tracing
    /// warning is the caller's to give).
    pub fn from_json(json: &str) -> Option<Self> {
        let stored: Stored<'_> = serde_json::from_str(json).ok()?;
        validate_owner(&stored.owner).ok()?;
        Some(Self {
            owner: stored.owner.into_owned(),
            created_at: from_unix_millis(stored.created_at)?,
            last_seen: from_unix_millis(stored.last_seen)?,
            user_agent: stored.user_agent.map(std::borrow::Cow::into_owned),
            client_ip: stored.client_ip.map(std::borrow::Cow::into_owned),
        })
    }
}

/// One live session of an owner, as [`OwnerIndex::sessions_of`] lists it: its record id
/// (never its key), expiry and [`Ownership`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSession {
    /// The record id; compare it with [`Session::record_id`](crate::Session::record_id) to
    /// mark the current session.
    pub id: RecordId,
    /// When the session expires.
    pub expires_at: OffsetDateTime,
    /// Owner, created, last seen, and client details when recorded.
    pub ownership: Ownership,
}

/// A store's index of sessions by owner: lists and ends one user's sessions. Implemented by
/// every engine of this workspace; `session-testkit`'s `owner_conformance!` checks one.
///
/// A store that implements it persists [`Record::ownership`](crate::Record::ownership) with
/// every `create` and `update`, gives it back from `load`, and keeps it across `touch`.
///
/// - Only live sessions are listed: never an expired one, never a deleted one, never one
///   whose record now names another owner or none.
/// - The index never grows without bound: what a deleted or expired session left behind is
///   removed by later index operations or by `clear_expired`.
/// - Ids only: nothing here takes or returns a session key.
#[async_trait]
pub trait OwnerIndex: Send + Sync {
    /// The live sessions of `owner`, most recently seen first.
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError>;

    /// Deletes every session of `owner` except the one with id `keep`, and returns the ids of
    /// the records it deleted (for a cache in front of the store to drop them).
    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError>;

    /// `touch` of an owned record that also writes its ownership (a new `last_seen`): moves
    /// the expiry and ownership of a live record, never its payload; no live record is
    /// [`StoreError::NotFound`].
    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError>;
}

/// Sorts a listing most recently seen first (ties by id, so the order is stable).
pub fn sort_listing(sessions: &mut [OwnedSession]) {
    sessions.sort_by(|a, b| {
        b.ownership
            .last_seen
            .cmp(&a.ownership.last_seen)
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn owner_ownership_json_round_trips() {
        let mut ownership = Ownership::new("user-42", datetime!(2030-01-02 03:04:05.678 UTC))
            .expect("a valid owner");
        ownership.set_last_seen(datetime!(2030-01-03 00:00 UTC));
        ownership.set_client(Some("Firefox \"quoted\"".into()), Some("::1".into()));
        let json = ownership.to_json();
        assert_eq!(Ownership::from_json(&json), Some(ownership));
        assert!(Ownership::from_json("{\"o\":\"\",\"c\":0,\"s\":0}").is_none());
        assert!(Ownership::from_json("not json").is_none());
    }

    #[test]
    fn owner_ids_are_checked() {
        assert!(validate_owner("42").is_ok());
        assert!(validate_owner("").is_err());
        assert!(validate_owner("a\nb").is_err());
        assert!(validate_owner(&"x".repeat(MAX_OWNER_LEN + 1)).is_err());
    }
}
