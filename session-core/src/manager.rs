//! `SessionManager`: the request lifecycle of Django's `SessionMiddleware`, for any framework.

use std::sync::Arc;

use cookie::{Cookie, SameSite};
use time::{Duration, OffsetDateTime};

use crate::session::Committed;
use crate::{ConfigError, Session, SessionConfig, SessionError, SessionStore};

/// The request lifecycle, framework-agnostic: build a [`Session`] from the request's `Cookie`
/// headers (no I/O), let the handler use it, then [`finish`](Self::finish) it with the
/// response status to get the store writes done and an [`Outcome`] to apply to the response.
///
/// ```
/// use session_core::{MemoryStore, SessionConfig, SessionManager};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::SessionError> {
/// let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default());
///
/// // Request 1: no cookie. The handler stores something.
/// let session = manager.session_from_headers(std::iter::empty::<&str>());
/// session.insert("user_id", 123).await?;
/// let outcome = manager.finish(&session, 200).await;
/// let cookie = outcome.set_cookie.expect("a new session sets its cookie");
/// assert!(outcome.vary_cookie);
///
/// // Request 2 brings the cookie back.
/// let header = format!("theme=dark; {}={}", cookie.name(), cookie.value());
/// let session = manager.session_from_headers([header.as_str()]);
/// assert_eq!(session.get::<i64>("user_id").await?, Some(123));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionManager {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    /// For a client-side engine, the sealer of its cookies; `None` for a store.
    sealer: Option<Arc<dyn crate::CookieSealer>>,
    /// The cleanup task started by [`with_cleanup`](Self::with_cleanup), stopped when the
    /// last clone of the manager is dropped.
    cleanup: Option<Arc<crate::CleanupHandle>>,
}

/// What the response needs after the handler ran: the result of
/// [`SessionManager::finish`].
#[derive(Debug, Clone, PartialEq)]
#[must_use = "the outcome must be applied to the response"]
pub struct Outcome {
    /// A `Set-Cookie` to add: the session cookie, or its removal (`Max-Age=0`).
    pub set_cookie: Option<Cookie<'static>>,
    /// Whether to add `Vary: Cookie`.
    pub vary_cookie: bool,
    /// When set, the handler's response must be replaced by this error response.
    pub replace_with: Option<Replacement>,
}

impl Outcome {
    /// The `Set-Cookie` header value, if any.
    pub fn set_cookie_header(&self) -> Option<String> {
        self.set_cookie.as_ref().map(Cookie::to_string)
    }

    /// Whether `Vary: Cookie` must be added to a response whose `Vary` headers are
    /// `existing`: wanted, and not already covered (by `Cookie` or `*`, in any case).
    pub fn needs_vary_header<'a>(&self, existing: impl IntoIterator<Item = &'a str>) -> bool {
        self.vary_cookie
            && !existing
                .into_iter()
                .flat_map(|value| value.split(','))
                .any(|item| item.trim().eq_ignore_ascii_case("cookie") || item.trim() == "*")
    }

    /// Whether the cookie sent is a removal.
    pub fn removes_cookie(&self) -> bool {
        self.set_cookie
            .as_ref()
            .is_some_and(|cookie| cookie.max_age() == Some(Duration::ZERO))
    }

    fn nothing() -> Self {
        Self {
            set_cookie: None,
            vary_cookie: false,
            replace_with: None,
        }
    }
}

/// An error response that replaces the handler's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// The session was deleted (a concurrent logout) before this request could save it:
    /// HTTP 400, as Django's `SessionInterrupted`.
    Interrupted,
    /// The store failed while saving: HTTP 503, the handler's body is dropped.
    StoreUnavailable,
    /// The session could not be saved for another reason (over
    /// [`max_payload_bytes`](crate::SessionConfig::max_payload_bytes), say): HTTP 500, the
    /// error is logged.
    ServerError,
}

impl Replacement {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Self::Interrupted => 400,
            Self::StoreUnavailable => 503,
            Self::ServerError => 500,
        }
    }

    /// A short plain-text body: the same text a handler's [`SessionError`] answers with.
    pub fn message(self) -> &'static str {
        match self {
            Self::Interrupted => crate::error::INTERRUPTED_BODY,
            Self::StoreUnavailable => crate::error::UNAVAILABLE_BODY,
            Self::ServerError => crate::error::INTERNAL_BODY,
        }
    }

    fn for_error(error: &SessionError) -> Self {
        match error.http_status() {
            400 => Self::Interrupted,
            503 => Self::StoreUnavailable,
            _ => Self::ServerError,
        }
    }
}

impl SessionManager {
    /// A manager over `store` with these settings.
    ///
    /// # Panics
    ///
    /// When the settings are invalid (see [`SessionConfig::validate`]), with the reason: a
    /// misconfiguration stops start-up instead of sending cookies browsers drop. Use
    /// [`try_new`](Self::try_new) to handle it.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        Self::from_shared(Arc::new(store), Arc::new(config))
    }

    /// A manager over `store`, or the reason the settings cannot work.
    pub fn try_new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        Self::try_from_shared(Arc::new(store), Arc::new(config))
    }

    /// A manager over an already shared store and configuration.
    ///
    /// # Panics
    ///
    /// When the settings are invalid, as [`new`](Self::new).
    pub fn from_shared(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>) -> Self {
        match Self::try_from_shared(store, config) {
            Ok(manager) => manager,
            Err(error) => panic!("{error}"),
        }
    }

    /// A manager over an already shared store and configuration, or the reason the settings
    /// cannot work.
    pub fn try_from_shared(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            store,
            config,
            sealer: None,
            cleanup: None,
        })
    }

    /// A manager for a client-side engine (Django's `signed_cookies`, or encrypted cookies):
    /// no store, the whole session in the cookie, sealed by `sealer`. The same `Session` API
    /// and lifecycle; a session whose cookie would pass
    /// [`MAX_COOKIE_BYTES`](crate::MAX_COOKIE_BYTES) (name, `=` and value) fails its save
    /// with [`SessionError::TooLarge`] naming the size, instead of a cookie the browser drops.
    ///
    /// Nothing is kept on the server, so nothing can be revoked there: `flush` sends the
    /// removal cookie, but a copy of the cookie taken earlier stays valid until it expires.
    ///
    /// # Panics
    ///
    /// When the settings are invalid, as [`new`](Self::new).
    pub fn client_side(sealer: impl crate::CookieSealer, config: SessionConfig) -> Self {
        match Self::try_client_side(Arc::new(sealer), config) {
            Ok(manager) => manager,
            Err(error) => panic!("{error}"),
        }
    }

    /// [`client_side`](Self::client_side), or the reason the settings cannot work.
    pub fn try_client_side(
        sealer: Arc<dyn crate::CookieSealer>,
        mut config: SessionConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let room = crate::MAX_COOKIE_BYTES.saturating_sub(config.cookie_name.len() + 1);
        config.max_payload_bytes = Some(config.max_payload_bytes.map_or(room, |l| l.min(room)));
        Ok(Self {
            store: Arc::new(crate::client_side::CookieJar::new(sealer.clone())),
            config: Arc::new(config),
            sealer: Some(sealer),
            cleanup: None,
        })
    }

    /// The client-side session a request's session cookie values stand for: the first that
    /// opens (verifies and has not expired) wins, at most [`MAX_CANDIDATES`](crate::MAX_CANDIDATES)
    /// are tried. No I/O.
    fn client_session(
        &self,
        sealer: &Arc<dyn crate::CookieSealer>,
        values: &[String],
        present: bool,
    ) -> Session {
        let jar = Arc::new(crate::client_side::CookieJar::new(sealer.clone()));
        let now = OffsetDateTime::now_utc();
        let mut found = None;
        for value in values.iter().take(crate::MAX_CANDIDATES) {
            let key = crate::SessionKey::generate();
            match jar.open(key.record_id(), value, self.config.cookie_age, now) {
                Ok(Some(record)) => {
                    jar.insert(record);
                    found = Some(key);
                    break;
                }
                Ok(None) => tracing::debug!("session cookie has expired; dropping it"),
                Err(error) => tracing::warn!(
                    target: "session::security",
                    length = value.len(),
                    error = %crate::error::error_chain(&error),
                    "session cookie does not verify; treating it as no session"
                ),
            }
        }
        Session::client_side(jar, self.config.clone(), found, present)
    }

    /// Also deletes expired sessions every `period` (Django's `clearsessions`, on a timer),
    /// for as long as this manager or a clone of it lives; see [`spawn_cleanup`](crate::spawn_cleanup).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or with a zero `period`.
    pub fn with_cleanup(mut self, period: std::time::Duration) -> Self {
        self.cleanup = Some(Arc::new(crate::spawn_cleanup(self.store.clone(), period)));
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Step 1: the session named by the request's `Cookie` header values, passed as raw bytes
    /// (pass every one: HTTP/2 splits them). Other cookies may hold any bytes, non-ASCII
    /// included; only the session cookie's own value must be a well-formed key. No I/O.
    ///
    /// A request can carry several cookies under the session name (one set for a parent
    /// domain and one for the host, say). Django lets the last one win; here a key that does
    /// not load (malformed, unknown, expired) never shadows one that does: the well-formed
    /// values are tried in header order, at most [`MAX_CANDIDATES`](crate::MAX_CANDIDATES)
    /// store lookups, and the first live one wins. So a cookie planted from a sibling
    /// subdomain cannot log a user out. The removal cookie is sent only when none loads. A
    /// cookie with that name but no well-formed value gives a new session that still counts
    /// as "the request carried the cookie".
    pub fn session_from_headers<I>(&self, cookie_headers: I) -> Session
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        if let Some(sealer) = &self.sealer {
            let mut values = Vec::new();
            for header in cookie_headers {
                let header = String::from_utf8_lossy(header.as_ref());
                for cookie in Cookie::split_parse(header.as_ref()).flatten() {
                    if cookie.name() == self.config.cookie_name {
                        values.push(cookie.value_trimmed().to_owned());
                    }
                }
            }
            return self.client_session(sealer, &values, !values.is_empty());
        }
        let mut present = false;
        let mut candidates: Vec<crate::SessionKey> = Vec::new();
        for header in cookie_headers {
            // Cookie parsing wants text; bytes that are not UTF-8 can only belong to other
            // cookies (a session key is ASCII), so replacing them loses nothing.
            let header = String::from_utf8_lossy(header.as_ref());
            for cookie in Cookie::split_parse(header.as_ref()).flatten() {
                if cookie.name() != self.config.cookie_name {
                    continue;
                }
                present = true;
                match crate::SessionKey::parse(cookie.value_trimmed()) {
                    Some(key) if !candidates.contains(&key) => candidates.push(key),
                    Some(_) => {}
                    None => tracing::warn!(
                        target: "session::security",
                        length = cookie.value().len(),
                        "session cookie is not a valid session key; ignoring it"
                    ),
                }
                if candidates.len() == crate::MAX_CANDIDATES {
                    return self.session_from_candidates(candidates);
                }
            }
        }
        if present {
            self.session_from_candidates(candidates)
        } else {
            Session::new(self.store.clone(), self.config.clone())
        }
    }

    fn session_from_candidates(&self, candidates: Vec<crate::SessionKey>) -> Session {
        Session::from_candidates(self.store.clone(), self.config.clone(), candidates)
    }

    /// Step 1 for frameworks that parse cookies themselves: the session named by the value of
    /// the session cookie, if the request had one. No I/O.
    pub fn session_from_cookie(&self, value: Option<&str>) -> Session {
        if let Some(sealer) = &self.sealer {
            let values: Vec<String> = value.map(str::to_owned).into_iter().collect();
            return self.client_session(sealer, &values, value.is_some());
        }
        match value {
            Some(value) => Session::from_cookie(self.store.clone(), self.config.clone(), value),
            None => Session::new(self.store.clone(), self.config.clone()),
        }
    }

    /// Step 2, after the handler: performs the store writes the session needs and says what
    /// the response must carry, following Django's `SessionMiddleware`:
    ///
    /// - the request carried the cookie and the session is now void (flushed, or its key was
    ///   unknown): a removal cookie and `Vary: Cookie`, whatever the status;
    /// - the session changed (or was saved, or `save_every_request` is on) and is not void: on
    ///   a 5xx status nothing is written and no cookie is set; otherwise it is written (create,
    ///   rotation, update, or an expiry-only touch) and the cookie is set with `Vary: Cookie`;
    /// - it was only read: `Vary: Cookie`.
    ///
    /// A save interrupted by a concurrent logout asks for a 400 with a removal cookie; a store
    /// failure asks for a 503 (the error is logged with its source).
    pub async fn finish(&self, session: &Session, status: u16) -> Outcome {
        let renew = self.config.save_every_request;
        if renew && status < 500 && session.session_key().is_some() {
            session.load_for_renewal().await;
        }
        let mut outcome = Outcome::nothing();
        outcome.vary_cookie = session.is_accessed();

        let inspection = session.inspect();
        if inspection.had_cookie && inspection.void {
            outcome.set_cookie = Some(self.removal_cookie());
            outcome.vary_cookie = true;
            return outcome;
        }
        let wants_write = session.is_modified() || inspection.saved || renew || session.seen_due();
        if !wants_write || inspection.void || inspection.poisoned || status >= 500 {
            return outcome;
        }

        match session.commit(renew, self.config.touch_threshold).await {
            Ok(Committed::Current) => {
                outcome.set_cookie = self.session_cookie(session).await;
                outcome.vary_cookie = true;
            }
            Ok(Committed::Kept(expires_at)) => {
                let left = (expires_at - OffsetDateTime::now_utc()).whole_seconds();
                outcome.set_cookie = self.cookie_with_age(session, Some(left)).await;
                outcome.vary_cookie = true;
            }
            Ok(Committed::Gone) if inspection.had_cookie => {
                outcome.set_cookie = Some(self.removal_cookie());
                outcome.vary_cookie = true;
            }
            Ok(Committed::Gone | Committed::Seen) | Err(SessionError::Poisoned) => {}
            Err(SessionError::Interrupted) => {
                tracing::info!("session deleted by a concurrent request before it could be saved");
                outcome.set_cookie = Some(self.removal_cookie());
                outcome.vary_cookie = true;
                outcome.replace_with = Some(Replacement::Interrupted);
            }
            Err(error) => {
                let replacement = Replacement::for_error(&error);
                tracing::error!(
                    error = %crate::error::error_chain(&error),
                    status = replacement.status(),
                    "saving the session failed"
                );
                outcome.set_cookie = None;
                outcome.replace_with = Some(replacement);
            }
        }
        outcome
    }

    /// Ends every session of `owner` (an admin's "log this user out", or after a password
    /// change), and returns how many records went. Requests in flight on them cannot save
    /// them back. Fails with [`SessionError::NoOwnerIndex`] when the store keeps no owner
    /// index.
    pub async fn end_sessions_of(&self, owner: &str) -> Result<u64, SessionError> {
        let index = self.store.owner_index().ok_or(SessionError::NoOwnerIndex)?;
        Ok(index.delete_sessions_of(owner, None).await?.len() as u64)
    }

    /// The live sessions of `owner`, most recently seen first (for an admin page).
    pub async fn sessions_of(&self, owner: &str) -> Result<Vec<crate::OwnedSession>, SessionError> {
        let index = self.store.owner_index().ok_or(SessionError::NoOwnerIndex)?;
        Ok(index.sessions_of(owner).await?)
    }

    /// The session cookie with `Max-Age`/`Expires` from the session's expiry age, or neither
    /// for a browser-close session.
    async fn session_cookie(&self, session: &Session) -> Option<Cookie<'static>> {
        let age = session.expiry_age().await.ok()?;
        self.cookie_with_age(session, Some(age.whole_seconds()))
            .await
    }

    async fn cookie_with_age(
        &self,
        session: &Session,
        age: Option<i64>,
    ) -> Option<Cookie<'static>> {
        let value = match session.is_client_side() {
            true => session.sealed_cookie()?,
            false => session.session_key()?.expose_secret().to_owned(),
        };
        let browser_close = session.expire_at_browser_close().await.ok()?;
        let mut cookie = self.base_cookie(value);
        cookie.set_http_only(self.config.cookie_http_only);
        if let (false, Some(age)) = (browser_close, age) {
            let max_age = Duration::seconds(age);
            cookie.set_max_age(max_age);
            cookie.set_expires(crate::expiry::saturating_add(
                OffsetDateTime::now_utc(),
                max_age,
            ));
        }
        Some(cookie)
    }

    /// The cookie that makes the browser forget the session: empty, `Max-Age=0`, expired in
    /// 1970, with the configured path and domain.
    pub fn removal_cookie(&self) -> Cookie<'static> {
        let mut cookie = self.base_cookie(String::new());
        cookie.set_max_age(Duration::ZERO);
        cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
        cookie
    }

    fn base_cookie(&self, value: String) -> Cookie<'static> {
        let config = &self.config;
        let mut cookie = Cookie::new(config.cookie_name.clone(), value);
        cookie.set_path(config.cookie_path.clone());
        if let Some(domain) = &config.cookie_domain {
            cookie.set_domain(domain.clone());
        }
        // Browsers drop `SameSite=None` cookies that are not `Secure`.
        let secure = config.cookie_secure || config.cookie_same_site == Some(SameSite::None);
        if secure {
            cookie.set_secure(true);
        }
        if let Some(same_site) = config.cookie_same_site {
            cookie.set_same_site(same_site);
        }
        cookie
    }
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
