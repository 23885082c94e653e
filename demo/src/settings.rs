//! Django's session settings, read from the environment under Django's names.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use session_core::{SameSite, SessionConfig};

/// The default `SESSION_FILE_PATH`, relative to the working directory.
pub const DEFAULT_FILE_PATH: &str = "sessions";

/// The default `DATABASE_URL`: `sessions.sqlite3` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://sessions.sqlite3";

/// Which store keeps the sessions: Django's `SESSION_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `db`: the database at `DATABASE_URL` (SQLite, PostgreSQL or MySQL/MariaDB).
    Db,
    /// `file`: one file per session in `SESSION_FILE_PATH`.
    File,
    /// `cache`: Redis at `REDIS_URL`.
    Cache,
    /// `cached_db`: Redis in front of the database.
    CachedDb,
    /// `memory`: this process only.
    Memory,
    /// `django`: Django's own `django_session` table in the database at `DATABASE_URL`,
    /// shared with a live Django site (needs `SECRET_KEY`).
    Django,
    /// `signed_cookies`: the whole session in a signed cookie, as Django's engine of that
    /// name (needs `SECRET_KEY`); nothing on the server.
    SignedCookies,
    /// `encrypted_cookies`: the whole session in an encrypted cookie (needs `SECRET_KEY`).
    EncryptedCookies,
}

impl Engine {
    /// Whether the engine keeps sessions in the cookie (no store).
    pub fn is_client_side(self) -> bool {
        matches!(self, Self::SignedCookies | Self::EncryptedCookies)
    }

    fn parse(value: &str) -> Option<Self> {
        // Django's dotted paths work too: django.contrib.sessions.backends.cached_db.
        let name = value.rsplit('.').next().unwrap_or(value);
        match name {
            "db" => Some(Self::Db),
            "file" => Some(Self::File),
            "cache" => Some(Self::Cache),
            "cached_db" => Some(Self::CachedDb),
            "memory" => Some(Self::Memory),
            "django" => Some(Self::Django),
            "signed_cookies" => Some(Self::SignedCookies),
            "encrypted_cookies" => Some(Self::EncryptedCookies),
            _ => None,
        }
    }

    /// Why `clearsessions` has nothing to do on this engine, if it has not: Redis expires
    /// sessions by itself, and the memory engine's sessions live in the serving process
    /// (which clears them every `SESSION_CLEANUP_INTERVAL`), not in `clearsessions`'s.
    pub fn nothing_to_clear(self) -> Option<&'static str> {
        match self {
            Self::Cache => Some("Redis expires sessions by itself"),
            Self::Memory => Some(
                "its sessions live inside the serving process, which clears expired ones \
                 every SESSION_CLEANUP_INTERVAL",
            ),
            Self::SignedCookies | Self::EncryptedCookies => {
                Some("sessions live in the browsers' cookies, nothing is kept on the server")
            }
            Self::Db | Self::File | Self::CachedDb | Self::Django => None,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Db => "db",
            Self::File => "file",
            Self::Cache => "cache",
            Self::CachedDb => "cached_db",
            Self::Memory => "memory",
            Self::Django => "django",
            Self::SignedCookies => "signed_cookies",
            Self::EncryptedCookies => "encrypted_cookies",
        })
    }
}

/// Everything the demo and `clearsessions` read from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SESSION_ENGINE` (default `db`).
    pub engine: Engine,
    /// `DATABASE_URL` (default `sqlite://sessions.sqlite3` in the working directory).
    pub database_url: String,
    /// `SESSION_FILE_PATH` (default `sessions` in the working directory, created mode
    /// 0700). Unlike Django, not the system's temp directory: a fixed name there can be
    /// created first by another user of the machine.
    pub file_path: PathBuf,
    /// `REDIS_URL` (default `redis://127.0.0.1:6379`).
    pub redis_url: String,
    /// `PORT` to serve on, on 127.0.0.1 (default 8000; 0 picks a free one).
    pub port: u16,
    /// `SESSION_CLEANUP_INTERVAL` in seconds (default 3600): how often the demo clears
    /// expired sessions.
    pub cleanup_interval: Duration,
    /// `SECRET_KEY`: with the `django` engine, the Django site's key; with any other
    /// engine, setting it signs every stored session (`SignedStore`), so write access to
    /// the store is not enough to forge one. Unset: unsigned.
    pub secret_key: Option<String>,
    /// `SECRET_KEY_FALLBACKS` (comma-separated): older keys that still verify.
    pub secret_key_fallbacks: Vec<String>,
    /// The `SESSION_*` settings.
    pub session: SessionConfig,
}

/// A setting with a value the demo cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSetting {
    /// The variable's name.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

impl fmt::Display for BadSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not valid: expected {}",
            self.name, self.value, self.expected
        )
    }
}

impl std::error::Error for BadSetting {}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, BadSetting> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable's value, if set).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, BadSetting> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let defaults = SessionConfig::default();
        let mut session = defaults.clone();

        if let Some(v) = get("SESSION_COOKIE_NAME") {
            let valid = v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            let name = valid.then(|| v.clone());
            session.cookie_name = check(
                "SESSION_COOKIE_NAME",
                "letters, digits, '-', '_' or '.'",
                &v,
                name,
            )?;
        }
        if let Some(v) = get("SESSION_COOKIE_AGE") {
            let seconds = v.parse::<i64>().ok().filter(|s| *s > 0);
            let seconds = check(
                "SESSION_COOKIE_AGE",
                "a whole number of seconds above 0",
                &v,
                seconds,
            )?;
            session.cookie_age = session_core::time::Duration::seconds(seconds);
        }
        session.cookie_domain = get("SESSION_COOKIE_DOMAIN");
        if let Some(v) = get("SESSION_COOKIE_PATH") {
            let path = v.starts_with('/').then(|| v.clone());
            session.cookie_path =
                check("SESSION_COOKIE_PATH", "a path starting with '/'", &v, path)?;
        }
        let flag = |name: &'static str, default: bool| -> Result<bool, BadSetting> {
            match get(name) {
                None => Ok(default),
                Some(v) => check(name, "True or False", &v, parse_bool(&v)),
            }
        };
        session.cookie_secure = flag("SESSION_COOKIE_SECURE", defaults.cookie_secure)?;
        session.cookie_http_only = flag("SESSION_COOKIE_HTTPONLY", defaults.cookie_http_only)?;
        session.expire_at_browser_close = flag(
            "SESSION_EXPIRE_AT_BROWSER_CLOSE",
            defaults.expire_at_browser_close,
        )?;
        session.save_every_request =
            flag("SESSION_SAVE_EVERY_REQUEST", defaults.save_every_request)?;
        // On in the demo (its "Your sessions" page shows each browser); off in the library.
        session.record_client = flag("SESSION_RECORD_CLIENT", true)?;
        if let Some(v) = get("SESSION_COOKIE_SAMESITE") {
            let same_site = match v.to_ascii_lowercase().as_str() {
                "lax" => Some(Some(SameSite::Lax)),
                "strict" => Some(Some(SameSite::Strict)),
                "none" => Some(Some(SameSite::None)),
                "false" => Some(None),
                _ => None,
            };
            session.cookie_same_site = check(
                "SESSION_COOKIE_SAMESITE",
                "Lax, Strict, None or False",
                &v,
                same_site,
            )?;
        }
        if let Some(v) = get("SESSION_TOUCH_THRESHOLD") {
            let fraction = v.parse::<f64>().ok().filter(|f| (0.0..=1.0).contains(f));
            session.touch_threshold = Some(check(
                "SESSION_TOUCH_THRESHOLD",
                "a fraction between 0 and 1",
                &v,
                fraction,
            )?);
        }

        let engine = match get("SESSION_ENGINE") {
            None => Engine::Db,
            Some(v) => check(
                "SESSION_ENGINE",
                "db, file, cache, cached_db, memory, django, signed_cookies or encrypted_cookies",
                &v,
                Engine::parse(&v),
            )?,
        };
        let port = match get("PORT") {
            None => 8000,
            Some(v) => check("PORT", "a port number", &v, v.parse::<u16>().ok())?,
        };
        let cleanup_interval = match get("SESSION_CLEANUP_INTERVAL") {
            None => Duration::from_secs(3600),
            Some(v) => {
                let seconds = v.parse::<u64>().ok().filter(|s| *s > 0);
                let expected = "a whole number of seconds above 0";
                Duration::from_secs(check("SESSION_CLEANUP_INTERVAL", expected, &v, seconds)?)
            }
        };
        Ok(Self {
            engine,
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            file_path: get("SESSION_FILE_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE_PATH)),
            redis_url: get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            port,
            cleanup_interval,
            secret_key: get("SECRET_KEY"),
            secret_key_fallbacks: get("SECRET_KEY_FALLBACKS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            session,
        })
    }
}

/// `parsed`, or the error naming the setting and its value.
fn check<T>(
    name: &'static str,
    expected: &'static str,
    value: &str,
    parsed: Option<T>,
) -> Result<T, BadSetting> {
    parsed.ok_or_else(|| BadSetting {
        name,
        value: value.to_owned(),
        expected,
    })
}

/// Django-style booleans: `True`/`False`, also `1`/`0`, `yes`/`no`, `on`/`off`.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, BadSetting> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_django() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.engine, Engine::Db);
        assert_eq!(s.database_url, "sqlite://sessions.sqlite3");
        assert_eq!(s.port, 8000);
        assert_eq!(s.session, SessionConfig::default().record_client(true));
        let off = settings(&[("SESSION_RECORD_CLIENT", "False")]).unwrap();
        assert_eq!(off.session, SessionConfig::default());
    }

    #[test]
    fn default_file_path_is_in_the_working_directory() {
        let s = settings(&[("SESSION_ENGINE", "file")]).unwrap();
        assert_eq!(s.file_path, PathBuf::from("sessions"));
        assert!(s.file_path.is_relative());
        assert!(!s.file_path.starts_with(std::env::temp_dir()));
    }

    #[test]
    fn django_names_are_read() {
        let s = settings(&[
            (
                "SESSION_ENGINE",
                "django.contrib.sessions.backends.cached_db",
            ),
            ("SESSION_COOKIE_AGE", "3600"),
            ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "True"),
            ("SESSION_SAVE_EVERY_REQUEST", "1"),
            ("SESSION_COOKIE_SECURE", "true"),
            ("SESSION_COOKIE_SAMESITE", "Strict"),
        ])
        .unwrap();
        assert_eq!(s.engine, Engine::CachedDb);
        assert_eq!(s.session.cookie_age, session_core::time::Duration::hours(1));
        assert!(s.session.expire_at_browser_close && s.session.save_every_request);
        assert!(s.session.cookie_secure);
        assert_eq!(s.session.cookie_same_site, Some(SameSite::Strict));
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value) in [
            ("SESSION_ENGINE", "mongo"),
            ("SESSION_COOKIE_AGE", "two weeks"),
            ("SESSION_COOKIE_AGE", "-5"),
            ("SESSION_COOKIE_SECURE", "maybe"),
            ("SESSION_COOKIE_SAMESITE", "sometimes"),
            ("SESSION_COOKIE_PATH", "app"),
            ("SESSION_COOKIE_NAME", "a b"),
            ("PORT", "http"),
            ("SESSION_TOUCH_THRESHOLD", "2"),
        ] {
            let error = settings(&[(name, value)]).unwrap_err();
            assert_eq!(error.name, name);
            assert!(error.to_string().contains(name) && error.to_string().contains(value));
        }
    }
}
