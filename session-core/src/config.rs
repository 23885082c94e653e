//! Session settings, with Django's names and defaults.

use cookie::SameSite;
use time::Duration;

use crate::ConfigError;

/// Django's `SESSION_*` settings with Django's defaults, plus `touch_threshold` and
/// `max_payload_bytes`.
///
/// Every configuration in this workspace is built the same way: `new()` (the defaults), then
/// one chained setter per setting, and it is checked once, when the store or manager using
/// it is built (here by [`SessionManager::try_new`](crate::SessionManager::try_new) through
/// [`validate`](Self::validate)). The fields stay public, to read them and for code written
/// as a struct literal with `..SessionConfig::default()`, which the same check covers.
///
/// ```
/// use session_core::SessionConfig;
/// use time::Duration;
///
/// let config = SessionConfig::new()
///     .cookie_age(Duration::hours(1)) // SESSION_COOKIE_AGE = 3600
///     .cookie_secure(true);
/// assert_eq!(config.cookie_name, "sessionid");
/// assert!(config.validate().is_ok());
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
    ///
    /// Turn it on when most requests only read the session and `save_every_request` keeps an
    /// inactivity expiry sliding: at `0.8` with the two-week default, a session read on every
    /// request is written about once every 2.8 days instead of on every request (2.4 to 7
    /// times the requests per second of a write per request in `BENCHMARKS.md`'s W3). The
    /// price: a session may end up to 20 % of its age (2.8 days here) before the moment it
    /// would have had with a write per request; the cookie always carries the stored expiry,
    /// so browser and server agree. Leave it off when the age is short and exact inactivity
    /// matters (a 15-minute banking timeout), or when `save_every_request` is off (it then
    /// changes nothing). It stays off by default because Django writes on every request and
    /// an expiry that moves less often than asked is a change of behaviour only the
    /// application can accept; no fraction is free of that.
    pub touch_threshold: Option<f64>,
    /// Ours: the largest encoded session a save may write, in bytes; 1 MiB by default, `None`
    /// for no limit. A save over it fails with [`SessionError::TooLarge`](crate::SessionError)
    /// and leaves the stored record as it was (the lifecycle answers 500 and logs it).
    pub max_payload_bytes: Option<usize>,
    /// Ours: how stale an owned session's [`last_seen`](crate::Ownership::last_seen) may get
    /// while it is used (5 minutes by default). A request that reads an owned session whose
    /// `last_seen` is older writes it again (an expiry-only write that keeps the expiry), so
    /// a user's list of sessions is this exact, and a session read on every request costs one
    /// extra write per interval, not one per request. Sessions without an owner never pay.
    pub last_seen_interval: Duration,
    /// Ours, off by default: record the client's `User-Agent` (and the IP address a handler
    /// gives [`Session::set_client_ip`](crate::Session::set_client_ip)) in an owned session's
    /// [`Ownership`](crate::Ownership), to show the owner "Firefox on Linux, 10 minutes ago".
    /// Both are personal data: turn it on only where your privacy notice covers them. They
    /// are kept only beside owned sessions, and go with them.
    pub record_client: bool,
}

/// The default [`SessionConfig::max_payload_bytes`]: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

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
            max_payload_bytes: Some(DEFAULT_MAX_PAYLOAD_BYTES),
            last_seen_interval: Duration::minutes(5),
            record_client: false,
        }
    }
}

impl SessionConfig {
    /// Django's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`cookie_name`](Self::cookie_name).
    pub fn cookie_name(mut self, cookie_name: impl Into<String>) -> Self {
        self.cookie_name = cookie_name.into();
        self
    }

    /// Sets [`cookie_age`](Self::cookie_age).
    pub const fn cookie_age(mut self, cookie_age: Duration) -> Self {
        self.cookie_age = cookie_age;
        self
    }

    /// Sets [`cookie_domain`](Self::cookie_domain).
    pub fn cookie_domain(mut self, cookie_domain: Option<String>) -> Self {
        self.cookie_domain = cookie_domain;
        self
    }

    /// Sets [`cookie_path`](Self::cookie_path).
    pub fn cookie_path(mut self, cookie_path: impl Into<String>) -> Self {
        self.cookie_path = cookie_path.into();
        self
    }

    /// Sets [`cookie_secure`](Self::cookie_secure).
    pub const fn cookie_secure(mut self, cookie_secure: bool) -> Self {
        self.cookie_secure = cookie_secure;
        self
    }

    /// Sets [`cookie_http_only`](Self::cookie_http_only).
    pub const fn cookie_http_only(mut self, cookie_http_only: bool) -> Self {
        self.cookie_http_only = cookie_http_only;
        self
    }

    /// Sets [`cookie_same_site`](Self::cookie_same_site).
    pub const fn cookie_same_site(mut self, cookie_same_site: Option<SameSite>) -> Self {
        self.cookie_same_site = cookie_same_site;
        self
    }

    /// Sets [`expire_at_browser_close`](Self::expire_at_browser_close).
    pub const fn expire_at_browser_close(mut self, expire_at_browser_close: bool) -> Self {
        self.expire_at_browser_close = expire_at_browser_close;
        self
    }

    /// Sets [`save_every_request`](Self::save_every_request).
    pub const fn save_every_request(mut self, save_every_request: bool) -> Self {
        self.save_every_request = save_every_request;
        self
    }

    /// Sets [`touch_threshold`](Self::touch_threshold).
    pub const fn touch_threshold(mut self, touch_threshold: Option<f64>) -> Self {
        self.touch_threshold = touch_threshold;
        self
    }

    /// Sets [`max_payload_bytes`](Self::max_payload_bytes).
    pub const fn max_payload_bytes(mut self, max_payload_bytes: Option<usize>) -> Self {
        self.max_payload_bytes = max_payload_bytes;
        self
    }

    /// Sets [`last_seen_interval`](Self::last_seen_interval).
    pub const fn last_seen_interval(mut self, last_seen_interval: Duration) -> Self {
        self.last_seen_interval = last_seen_interval;
        self
    }

    /// Sets [`record_client`](Self::record_client).
    pub const fn record_client(mut self, record_client: bool) -> Self {
        self.record_client = record_client;
        self
    }

    /// Checks the settings once, at start-up (`SessionManager::try_new` and the layers call
    /// it): a cookie name that is not an HTTP token, a path or domain that cannot go in a
    /// `Set-Cookie` header, a cookie age that is not positive, a `touch_threshold` that is not
    /// a fraction from 0 to 1, and the cookie prefixes browsers enforce: `__Secure-` needs
    /// `cookie_secure`, and `__Host-` also needs `cookie_path = "/"` and no domain. Any of
    /// those would otherwise give a cookie every browser silently drops.
    ///
    /// ```
    /// use session_core::SessionConfig;
    ///
    /// let host_only = SessionConfig::new().cookie_name("__Host-session");
    /// assert!(host_only.validate().is_err()); // needs cookie_secure
    /// let secure = host_only.cookie_secure(true);
    /// assert!(secure.validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError(message));
        let name = &self.cookie_name;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return invalid(format!(
                "cookie_name {name:?} is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"
            ));
        }
        if !self.cookie_path.starts_with('/') || !self.cookie_path.bytes().all(is_attribute_byte) {
            return invalid(format!(
                "cookie_path {:?} must start with / and hold no control character, non-ASCII or ';'",
                self.cookie_path
            ));
        }
        if let Some(domain) = &self.cookie_domain {
            let bare = domain.strip_prefix('.').unwrap_or(domain);
            let valid = !bare.is_empty()
                && bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return invalid(format!(
                    "cookie_domain {domain:?} is not a domain name (letters, digits, '-' and '.')"
                ));
            }
        }
        if !self.cookie_age.is_positive() {
            return invalid(format!(
                "cookie_age must be positive, not {} seconds",
                self.cookie_age.whole_seconds()
            ));
        }
        if let Some(fraction) = self.touch_threshold
            && !(0.0..=1.0).contains(&fraction)
        {
            return invalid(format!(
                "touch_threshold must be a fraction from 0 to 1 (e.g. 0.8), not {fraction}"
            ));
        }
        if self.last_seen_interval.is_negative() {
            return invalid(format!(
                "last_seen_interval must not be negative, not {} seconds",
                self.last_seen_interval.whole_seconds()
            ));
        }
        let prefixed = name.starts_with("__Secure-") || name.starts_with("__Host-");
        if prefixed && !self.cookie_secure {
            return invalid(format!(
                "cookie_name {name:?} has a prefix browsers accept only on Secure cookies: set cookie_secure"
            ));
        }
        if name.starts_with("__Host-") && (self.cookie_path != "/" || self.cookie_domain.is_some())
        {
            return invalid(format!(
                "cookie_name {name:?} has the __Host- prefix: browsers need cookie_path \"/\" and no cookie_domain"
            ));
        }
        Ok(())
    }
}

/// RFC 6265 cookie-name: an RFC 7230 token.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 attribute value: any visible ASCII or space, except ';'.
fn is_attribute_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b';'
}
