//! A session's own expiry setting and Django's expiry arithmetic.

use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::record::truncate_to_millis;

/// How long a session lives, set per session with [`Session::set_expiry`](crate::Session::set_expiry).
///
/// The setting travels in the session's payload, so it is still in force on the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Follow the configuration: `cookie_age`, and browser-close if
    /// `expire_at_browser_close` is set. Django's `set_expiry(None)`.
    #[default]
    Default,
    /// Expire after this much inactivity, renewed whenever the session is saved. Django's
    /// `set_expiry(int)`. A zero or negative age means the session is already over.
    Inactivity(Duration),
    /// Expire at this fixed moment (kept to whole milliseconds). Django's
    /// `set_expiry(datetime)`.
    At(OffsetDateTime),
    /// A cookie without `Max-Age`, dropped when the browser closes; the server-side record
    /// still expires after `cookie_age`. Django's `set_expiry(0)`.
    BrowserClose,
}

impl Expiry {
    /// Normalises the setting: moments to UTC whole milliseconds.
    pub(crate) fn normalized(self) -> Self {
        match self {
            Self::At(at) => Self::At(truncate_to_millis(at)),
            other => other,
        }
    }

    /// Seconds until expiry measured from `now`, floored as Django's `get_expiry_age`.
    pub(crate) fn age(self, cookie_age: Duration, now: OffsetDateTime) -> i64 {
        match self {
            Self::Default | Self::BrowserClose => cookie_age.whole_seconds(),
            Self::Inactivity(age) => age.whole_seconds(),
            Self::At(at) => floor_seconds(at - now),
        }
    }

    /// When a session saved at `now` expires, as Django's `get_expiry_date`. Never panics:
    /// dates beyond the representable range saturate.
    pub(crate) fn date(self, cookie_age: Duration, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Default | Self::BrowserClose => saturating_add(now, cookie_age),
            Self::Inactivity(age) => saturating_add(now, age),
            Self::At(at) => at,
        }
    }

    /// Whether the cookie should be a browser-session cookie, as Django's
    /// `get_expire_at_browser_close`.
    pub(crate) fn at_browser_close(self, config_default: bool) -> bool {
        match self {
            Self::Default => config_default,
            Self::BrowserClose => true,
            Self::Inactivity(_) | Self::At(_) => false,
        }
    }
}

/// Whole seconds, rounded towards negative infinity (Python's `d.days * 86400 + d.seconds`).
fn floor_seconds(d: Duration) -> i64 {
    let seconds = d.whole_seconds();
    if d.subsec_nanoseconds() < 0 {
        seconds - 1
    } else {
        seconds
    }
}

/// `at + d`, clamped to the range `time` can represent.
pub(crate) fn saturating_add(at: OffsetDateTime, d: Duration) -> OffsetDateTime {
    at.checked_add(d).unwrap_or_else(|| {
        let bound = if d.is_negative() {
            PrimitiveDateTime::MIN
        } else {
            PrimitiveDateTime::MAX
        };
        bound.assume_offset(UtcOffset::UTC)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AGE: Duration = Duration::seconds(1_209_600);
    const NOW: OffsetDateTime = datetime!(2030-06-01 12:00:00.5 UTC);

    #[test]
    fn default_and_browser_close_follow_the_cookie_age() {
        for expiry in [Expiry::Default, Expiry::BrowserClose] {
            assert_eq!(expiry.age(AGE, NOW), 1_209_600);
            assert_eq!(expiry.date(AGE, NOW), NOW + AGE);
        }
        assert!(Expiry::BrowserClose.at_browser_close(false));
        assert!(Expiry::Default.at_browser_close(true));
        assert!(!Expiry::Default.at_browser_close(false));
        assert!(!Expiry::Inactivity(AGE).at_browser_close(true));
    }

    #[test]
    fn moments_floor_to_whole_seconds_and_go_negative() {
        let at = Expiry::At(NOW + Duration::milliseconds(10_900));
        assert_eq!(at.age(AGE, NOW), 10);
        let past = Expiry::At(NOW - Duration::milliseconds(10_100));
        assert_eq!(past.age(AGE, NOW), -11);
        assert_eq!(past.date(AGE, NOW), NOW - Duration::milliseconds(10_100));
    }

    #[test]
    fn huge_ages_saturate_instead_of_panicking() {
        let huge = Expiry::Inactivity(Duration::MAX);
        assert_eq!(huge.date(AGE, NOW), PrimitiveDateTime::MAX.assume_utc());
        let negative = Expiry::Inactivity(Duration::MIN);
        assert_eq!(negative.date(AGE, NOW), PrimitiveDateTime::MIN.assume_utc());
        assert_eq!(
            Expiry::Default.date(Duration::MAX, NOW),
            PrimitiveDateTime::MAX.assume_utc()
        );
    }
}
