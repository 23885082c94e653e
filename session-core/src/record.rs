//! The unit stores persist: an id, an opaque payload and an expiry.

use time::OffsetDateTime;

use crate::RecordId;
use crate::owner::Ownership;

/// One stored session: what a [`SessionStore`](crate::SessionStore) persists and gives back.
///
/// The payload is the codec's output, opaque to stores. `expires_at` is UTC, truncated to whole
/// milliseconds on construction, so every store can give back exactly what it was given.
///
/// A record may also carry its session's [`Ownership`] (who it belongs to), kept beside the
/// payload: stores with an [`OwnerIndex`](crate::OwnerIndex) persist it, others ignore it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    id: RecordId,
    payload: String,
    expires_at: OffsetDateTime,
    ownership: Option<Box<Ownership>>,
}

impl Record {
    /// Builds a record; `expires_at` is converted to UTC and truncated to whole milliseconds.
    pub fn new(id: RecordId, payload: impl Into<String>, expires_at: OffsetDateTime) -> Self {
        Self {
            id,
            payload: payload.into(),
            expires_at: truncate_to_millis(expires_at),
            ownership: None,
        }
    }

    /// The record with this ownership (`None`: no owner).
    pub fn with_ownership(mut self, ownership: Option<Ownership>) -> Self {
        self.ownership = ownership.map(Box::new);
        self
    }

    /// Who the session belongs to, if anyone.
    pub fn ownership(&self) -> Option<&Ownership> {
        self.ownership.as_deref()
    }

    /// Takes the ownership out of the record.
    pub fn take_ownership(&mut self) -> Option<Ownership> {
        self.ownership.take().map(|boxed| *boxed)
    }

    /// Builds a record from an expiry in Unix milliseconds, as SQLite and Redis keep it.
    /// Returns `None` when the value lies outside the dates `time` can represent.
    pub fn from_unix_millis(
        id: RecordId,
        payload: impl Into<String>,
        expires_at: i64,
    ) -> Option<Self> {
        let expires_at = from_unix_millis(expires_at)?;
        Some(Self::new(id, payload, expires_at))
    }

    /// The record's id.
    pub fn id(&self) -> &RecordId {
        &self.id
    }

    /// The encoded session, opaque to stores.
    pub fn payload(&self) -> &str {
        &self.payload
    }

    /// When the record stops being live (UTC, whole milliseconds).
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// The expiry as Unix milliseconds.
    pub fn expires_at_unix_millis(&self) -> i64 {
        unix_millis(self.expires_at)
    }

    /// Whether the record is live at `now`: `expires_at > now`.
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }

    /// Moves the expiry (truncated to whole milliseconds, as on construction).
    pub fn set_expires_at(&mut self, expires_at: OffsetDateTime) {
        self.expires_at = truncate_to_millis(expires_at);
    }

    /// Splits the record into its id, payload and expiry.
    pub fn into_parts(self) -> (RecordId, String, OffsetDateTime) {
        (self.id, self.payload, self.expires_at)
    }
}

/// Converts a moment to UTC and drops everything below the millisecond.
pub fn truncate_to_millis(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    let nanos = at.nanosecond();
    at.replace_nanosecond(nanos - nanos % 1_000_000)
        .unwrap_or(at)
}

/// A moment as Unix milliseconds (sub-millisecond parts are dropped, towards the past).
pub fn unix_millis(at: OffsetDateTime) -> i64 {
    // Every `OffsetDateTime` lies within ±10^4 years, so the division always fits an i64.
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// Unix milliseconds back to a UTC moment; `None` outside the representable range.
pub fn from_unix_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionKey;
    use time::macros::datetime;

    #[test]
    fn expiry_is_truncated_to_millis_in_utc() {
        let id = SessionKey::generate().record_id();
        let record = Record::new(id, "{}", datetime!(2030-01-02 03:04:05.678_901_234 +02:00));
        assert_eq!(record.expires_at(), datetime!(2030-01-02 01:04:05.678 UTC));
        assert_eq!(
            from_unix_millis(record.expires_at_unix_millis()),
            Some(record.expires_at())
        );
    }

    #[test]
    fn unix_millis_round_down_before_the_epoch() {
        assert_eq!(unix_millis(datetime!(1969-12-31 23:59:59.999_5 UTC)), -1);
        assert!(from_unix_millis(i64::MAX).is_none());
    }
}
