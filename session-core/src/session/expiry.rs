//! The session's own expiry setting, as Django's `set_expiry` and `get_expiry_*`.

use time::{Duration, OffsetDateTime};

use super::Session;
use crate::{Expiry, SessionError};

impl Session {
    /// Sets this session's expiry. Always marks the session modified; the setting travels in
    /// the payload and is in force on the next request. [`Expiry::Default`] returns to the
    /// configuration.
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        state.loaded()?.expiry = expiry.normalized();
        state.mark_modified();
        Ok(())
    }

    /// The session's own expiry setting.
    pub async fn expiry(&self) -> Result<Expiry, SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        Ok(state.loaded()?.expiry)
    }

    /// How long until the session expires, counted from now and floored to whole seconds, as
    /// Django's `get_expiry_age` (which gives the seconds): the cookie age by default, the
    /// inactivity age, or the time left until a fixed moment (negative once it has passed).
    pub async fn expiry_age(&self) -> Result<Duration, SessionError> {
        let expiry = self.expiry().await?;
        let seconds = expiry.age(self.inner.config.cookie_age, OffsetDateTime::now_utc());
        Ok(Duration::seconds(seconds))
    }

    /// Django's `get_expiry_age` exactly: [`expiry_age`](Self::expiry_age) in whole seconds.
    pub async fn expiry_age_seconds(&self) -> Result<i64, SessionError> {
        Ok(self.expiry_age().await?.whole_seconds())
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
}
