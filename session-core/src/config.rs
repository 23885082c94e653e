//! Session settings, with Django's names and defaults.

use cookie::SameSite;
use time::Duration;

/// Django's `SESSION_*` settings with Django's defaults, plus `touch_threshold`.
///
/// ```
/// use session_core::SessionConfig;
/// use time::Duration;
///
/// let config = SessionConfig {
///     cookie_age: Duration::hours(1), // SESSION_COOKIE_AGE = 3600
///     cookie_secure: true,
///     ..SessionConfig::default()
/// };
/// assert_eq!(config.cookie_name, "sessionid");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// `SESSION_COOKIE_NAME`: `"sessionid"`.
    pub cookie_name: String,
    /// `SESSION_COOKIE_AGE`: two weeks. Also the record's lifetime for browser-close sessions.
    pub cookie_age: Duration,
    /// `SESSION_COOKIE_DOMAIN`: none (host-only cookie).
    pub cookie_domain: Option<String>,
    /// `SESSION_COOKIE_PATH`: `"/"`.
    pub cookie_path: String,
    /// `SESSION_COOKIE_SECURE`: `false`.
    pub cookie_secure: bool,
    /// `SESSION_COOKIE_HTTPONLY`: `true`.
    pub cookie_http_only: bool,
    /// `SESSION_COOKIE_SAMESITE`: `Lax`; `None` omits the attribute.
    pub cookie_same_site: Option<SameSite>,
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE`: `false`.
    pub expire_at_browser_close: bool,
    /// `SESSION_SAVE_EVERY_REQUEST`: `false`.
    pub save_every_request: bool,
    /// Ours, off by default. Under `save_every_request`, skip the expiry-only write while more
    /// than this fraction of the session's lifetime remains (e.g. `0.8`): fewer writes, at the
    /// price of a slightly earlier expiry.
    pub touch_threshold: Option<f64>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: String::from("sessionid"),
            cookie_age: Duration::seconds(1_209_600),
            cookie_domain: None,
            cookie_path: String::from("/"),
            cookie_secure: false,
            cookie_http_only: true,
            cookie_same_site: Some(SameSite::Lax),
            expire_at_browser_close: false,
            save_every_request: false,
            touch_threshold: None,
        }
    }
}
