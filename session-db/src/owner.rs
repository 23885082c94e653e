//! What the three SQL stores share for the owner index: the `owner` and `owner_meta` columns
//! of a record, and reading rows back into a listing.

use session_core::time::OffsetDateTime;
use session_core::{OwnedSession, Ownership, Record, RecordId};

/// The `owner` and `owner_meta` values of a record (both `NULL` without an owner).
pub(crate) fn columns(record: &Record) -> (Option<&str>, Option<String>) {
    match record.ownership() {
        Some(ownership) => (Some(ownership.owner()), Some(ownership.to_json())),
        None => (None, None),
    }
}

/// The ownership an `owner_meta` value holds; `None` (with a warning) when it does not read.
pub(crate) fn from_meta(id: &RecordId, meta: Option<&str>) -> Option<Ownership> {
    let meta = meta?;
    let ownership = Ownership::from_json(meta);
    if ownership.is_none() {
        tracing::warn!(
            target: "session::security",
            record = %id.as_str().get(..8).unwrap_or_default(),
            "session row has an unreadable owner_meta; treating the session as unowned"
        );
    }
    ownership
}

/// The `keep` bind of `delete_owned`: no record id is empty.
pub(crate) fn keep(keep: Option<&RecordId>) -> &str {
    keep.map_or("", RecordId::as_str)
}

/// Rows of `list_owned` (`id, expires_at, owner_meta`) as a listing of `owner`'s sessions,
/// most recently seen first; rows whose id or metadata does not read are left out.
pub(crate) fn listing(
    owner: &str,
    rows: impl IntoIterator<Item = (String, OffsetDateTime, Option<String>)>,
) -> Vec<OwnedSession> {
    let mut sessions: Vec<OwnedSession> = rows
        .into_iter()
        .filter_map(|(id, expires_at, meta)| {
            let id = RecordId::parse(id.trim_end())?;
            let ownership = from_meta(&id, meta.as_deref())?;
            (ownership.owner() == owner).then_some(OwnedSession {
                id,
                expires_at,
                ownership,
            })
        })
        .collect();
    session_core::owner::sort_listing(&mut sessions);
    sessions
}

/// Deleted ids as record ids (ids that do not parse were never sessions).
pub(crate) fn ids(rows: impl IntoIterator<Item = String>) -> Vec<RecordId> {
    rows.into_iter()
        .filter_map(|id| RecordId::parse(id.trim_end()))
        .collect()
}
