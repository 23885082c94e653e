//! The store a `SESSION_ENGINE` setting stands for, opened and migrated, and where it keeps
//! sessions, said without passwords.
//!
//! The SQLite database file is created mode 0600 before SQLite opens it (SQLite gives its
//! `-wal` and `-shm` files the same mode), so session data is not readable by other users;
//! an existing file that is readable by them is used, with a warning. File-engine errors
//! name the directory.

use std::error::Error as StdError;
use std::fmt;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use session_cache::{CachedStore, RedisConfig, RedisStore};
use session_core::{BoxError, MemoryStore, SessionStore, StoreError};
use session_core::{CookieSealer, SessionManager};
use session_db::{MySqlStore, PostgresStore, SqliteStore};
use session_django::signing::Keys;
use session_django::{DjangoStore, EncryptedCookies, SignedCookies, SignedStore};
use session_file::FileStore;

use crate::settings::{Engine, Settings};

/// The manager for the configured engine: a client-side one for `signed_cookies` and
/// `encrypted_cookies`, else over [`open_store`]'s store. Errors are for the start-up line.
pub async fn open_manager(settings: &Settings) -> Result<SessionManager, OpenError> {
    let config = settings.session.clone();
    if settings.engine.is_client_side() {
        let keys = keys(settings).ok_or_else(|| {
            OpenError::Config(format!(
                "SESSION_ENGINE={} needs SECRET_KEY (and SECRET_KEY_FALLBACKS during a rotation)",
                settings.engine
            ))
        })?;
        let sealer: Arc<dyn CookieSealer> = match settings.engine {
            Engine::EncryptedCookies => Arc::new(EncryptedCookies::new(keys, config.cookie_age)),
            _ => Arc::new(SignedCookies::new(keys, config.cookie_age)),
        };
        return SessionManager::try_client_side(sealer, config)
            .map_err(|error| OpenError::Config(error.to_string()));
    }
    let store = open_store(settings).await.map_err(OpenError::Store)?;
    SessionManager::try_from_shared(store, Arc::new(config))
        .map_err(|error| OpenError::Config(error.to_string()))
}

/// Why [`open_manager`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// The settings cannot work (exit code 2).
    Config(String),
    /// The store did not open (exit code 1).
    Store(StoreError),
}

fn keys(settings: &Settings) -> Option<Keys> {
    settings.secret_key.as_ref().map(|secret| {
        Keys::new(secret.clone()).with_fallbacks(settings.secret_key_fallbacks.clone())
    })
}

/// Opens the configured store and creates its table if it is a database (never Django's:
/// the `django` engine checks that Django's migrations made it). With `SECRET_KEY` set, the
/// other engines sign what they store.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn SessionStore>, StoreError> {
    let keys = keys(settings);
    if settings.engine == Engine::Django {
        let keys = keys.ok_or_else(|| {
            StoreError::config(
                "SESSION_ENGINE=django needs SECRET_KEY (the Django site's), and \
                 SECRET_KEY_FALLBACKS if it has any",
            )
        })?;
        let store = DjangoStore::connect(&settings.database_url, keys).await?;
        store.check_table().await?;
        return Ok(Arc::new(store));
    }
    let store = native_store(settings).await?;
    Ok(match keys {
        Some(keys) => Arc::new(SignedStore::new(store, keys)),
        None => store,
    })
}

async fn native_store(settings: &Settings) -> Result<Arc<dyn SessionStore>, StoreError> {
    Ok(match settings.engine {
        Engine::Memory => Arc::new(MemoryStore::new()),
        Engine::File => Arc::new(file_store(&settings.file_path)?),
        Engine::Cache => Arc::new(redis(settings)?),
        Engine::Db => database(&settings.database_url).await?.into(),
        Engine::CachedDb => {
            let cache = redis(settings)?;
            match database(&settings.database_url).await? {
                Database::Postgres(db) => Arc::new(CachedStore::new(cache, db)),
                Database::MySql(db) => Arc::new(CachedStore::new(cache, db)),
                Database::Sqlite(db) => Arc::new(CachedStore::new(cache, db)),
            }
        }
        Engine::Django => unreachable!("opened by open_store"),
        Engine::SignedCookies | Engine::EncryptedCookies => {
            return Err(StoreError::config(format!(
                "SESSION_ENGINE={} keeps sessions in cookies: it has no store (use open_manager)",
                settings.engine
            )));
        }
    })
}

/// Where the configured engine keeps sessions, for the start-up line: the directory, the
/// SQLite file (absolute paths), or the server's URL with any password replaced by `***`.
///
/// ```
/// let settings = demo::Settings::from_lookup(|name| match name {
///     "SESSION_ENGINE" => Some("cache".into()),
///     "REDIS_URL" => Some("redis://default:secret@redis.internal:6379/0".into()),
///     _ => None,
/// })?;
/// assert_eq!(
///     demo::describe_store(&settings),
///     "in Redis at redis://default:***@redis.internal:6379/0"
/// );
/// # Ok::<(), demo::BadSetting>(())
/// ```
pub fn describe_store(settings: &Settings) -> String {
    match settings.engine {
        Engine::Memory => "in this process's memory, gone when it stops".to_owned(),
        Engine::File => format!("in files under {}", shown(&settings.file_path)),
        Engine::Cache => format!("in Redis at {}", redact_url(&settings.redis_url)),
        Engine::Db => format!("in {}", describe_database(&settings.database_url)),
        Engine::Django => format!(
            "in Django's django_session table in {}",
            describe_database(&settings.database_url)
        ),
        Engine::SignedCookies => {
            "in signed cookies (Django's signed_cookies), none on the server".to_owned()
        }
        Engine::EncryptedCookies => "in encrypted cookies, none on the server".to_owned(),
        Engine::CachedDb => format!(
            "in {}, cached in Redis at {}",
            describe_database(&settings.database_url),
            redact_url(&settings.redis_url)
        ),
    }
}

/// What a start-up error adds to say which store failed: ` (in …)` as
/// [`describe_store`] says it, or nothing for the file engine, whose errors name their
/// directory already.
pub fn store_location_for_errors(settings: &Settings) -> String {
    match settings.engine {
        Engine::File => String::new(),
        _ => format!(" ({})", describe_store(settings)),
    }
}

fn describe_database(url: &str) -> String {
    match sqlite_file(url) {
        Some(path) => format!("the SQLite database {}", shown(&path)),
        None => redact_url(url),
    }
}

/// `path` made absolute against the working directory, for messages.
fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// `url` with the password of its user info, and any password-like query parameter
/// (`password`, `pass`, `passwd`, `pwd`, `sslpassword`), replaced by `***`: safe to log.
///
/// ```
/// use demo::engine::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/app"), "postgres://app:***@db:5432/app");
/// assert_eq!(redact_url("redis://:s3cret@cache:6379"), "redis://:***@cache:6379");
/// assert_eq!(redact_url("mysql://app@db/app?password=s3cret"), "mysql://app@db/app?password=***");
/// assert_eq!(redact_url("sqlite://sessions.sqlite3"), "sqlite://sessions.sqlite3");
/// ```
pub fn redact_url(url: &str) -> String {
    let (head, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    // The user info ends at the last '@': a password holding a raw '/', '?' or '@' is then
    // still hidden whole (at worst, a path holding '@' is hidden too).
    let (user_info, rest) = match (head.is_empty(), rest.rsplit_once('@')) {
        (false, Some((info, after))) => (Some(info), after),
        _ => (None, rest),
    };
    let mut redacted = head;
    if let Some(info) = user_info {
        match info.split_once(':') {
            Some((user, _password)) => {
                redacted.push_str(user);
                redacted.push_str(":***@");
            }
            None => {
                redacted.push_str(info);
                redacted.push('@');
            }
        }
    }
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    redacted.push_str(path);
    if let Some(query) = query {
        redacted.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _))
                    if ["password", "pass", "passwd", "pwd", "sslpassword"]
                        .contains(&name.to_ascii_lowercase().as_str()) =>
                {
                    format!("{name}=***")
                }
                _ => param.to_owned(),
            })
            .collect();
        redacted.push_str(&params.join("&"));
    }
    redacted
}

/// An error about a path, naming it (and the setting it came from).
#[derive(Debug)]
struct AtPath {
    setting: &'static str,
    path: String,
    source: BoxError,
}

impl fmt::Display for AtPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.setting, self.path)
    }
}

impl StdError for AtPath {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// The file store, whose errors name `SESSION_FILE_PATH`'s directory.
fn file_store(path: &Path) -> Result<FileStore, StoreError> {
    FileStore::new(path).map_err(|error| match error {
        StoreError::Backend { context, source } => StoreError::backend(
            context,
            AtPath {
                setting: "SESSION_FILE_PATH",
                path: shown(path),
                source,
            },
        ),
        other => other,
    })
}

/// The file an `sqlite:` URL names, as sqlx reads it; `None` for other schemes, in-memory
/// and read-only databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    if database.is_empty() || database == ":memory:" {
        return None;
    }
    let special = params
        .split('&')
        .any(|param| param == "mode=memory" || param == "mode=ro");
    if special {
        return None;
    }
    percent_decode(database).map(PathBuf::from)
}

/// `%XX` escapes decoded, as sqlx does for SQLite file names; `None` if not valid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// Creates the SQLite database file with mode 0600 if it is missing (SQLite would create it
/// world-readable under the usual umask, and gives its `-wal` and `-shm` files the database
/// file's mode). An existing file is left as it is, with a warning if other users can read
/// it or its companions.
fn create_private_sqlite_file(path: &Path) -> Result<(), StoreError> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => {
            tracing::info!(path = %shown(path), "created the SQLite session database, mode 0600");
            Ok(())
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.as_os_str().to_owned();
                file.push(suffix);
                warn_if_readable_by_others(Path::new(&file));
            }
            Ok(())
        }
        Err(error) => Err(StoreError::backend(
            "creating the SQLite database file",
            AtPath {
                setting: "DATABASE_URL",
                path: shown(path),
                source: error.into(),
            },
        )),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                target: "session::security",
                "{} is open to other users (mode {mode:04o}): anyone who can read it can read \
                 session data; `chmod 600` it",
                shown(path)
            );
        }
    }
}

fn redis(settings: &Settings) -> Result<RedisStore, StoreError> {
    RedisStore::new(&settings.redis_url, RedisConfig::default())
}

/// A migrated database store, by the URL's scheme.
enum Database {
    Postgres(PostgresStore),
    MySql(MySqlStore),
    Sqlite(SqliteStore),
}

impl From<Database> for Arc<dyn SessionStore> {
    fn from(database: Database) -> Self {
        match database {
            Database::Postgres(db) => Arc::new(db),
            Database::MySql(db) => Arc::new(db),
            Database::Sqlite(db) => Arc::new(db),
        }
    }
}

async fn database(url: &str) -> Result<Database, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    let database = match scheme {
        "postgres" | "postgresql" => {
            let store = PostgresStore::connect(url).await?;
            store.migrate().await?;
            Database::Postgres(store)
        }
        "mysql" | "mariadb" => {
            let store = MySqlStore::connect(&url.replacen("mariadb:", "mysql:", 1)).await?;
            store.migrate().await?;
            Database::MySql(store)
        }
        "sqlite" => {
            if let Some(path) = sqlite_file(url) {
                create_private_sqlite_file(&path)?;
            }
            let store = SqliteStore::connect(url).await?;
            store.migrate().await?;
            Database::Sqlite(store)
        }
        _ => {
            return Err(StoreError::backend(
                "opening the session database",
                format!(
                    "DATABASE_URL must start with sqlite:, postgres:, mysql: or mariadb:, not {scheme:?}"
                ),
            ));
        }
    };
    Ok(database)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db:5432/app",
                "postgres://app:***@db:5432/app",
            ),
            ("postgresql://app@db/app", "postgresql://app@db/app"),
            (
                "postgres://db/app?user=app&password=s3cret&sslmode=require",
                "postgres://db/app?user=app&password=***&sslmode=require",
            ),
            (
                "mysql://root:p%40ss@127.0.0.1:3306/test",
                "mysql://root:***@127.0.0.1:3306/test",
            ),
            (
                "mariadb://root:pa/ss?w@rd@db/test",
                "mariadb://root:***@db/test",
            ),
            (
                "redis://:s3cret@127.0.0.1:6379",
                "redis://:***@127.0.0.1:6379",
            ),
            (
                "redis://default:s3cret@127.0.0.1:6379/0",
                "redis://default:***@127.0.0.1:6379/0",
            ),
            (
                "rediss://user:s3cret@cache/0?protocol=resp3",
                "rediss://user:***@cache/0?protocol=resp3",
            ),
            (
                "redis+unix:///run/redis.sock?pass=s3cret&db=1",
                "redis+unix:///run/redis.sock?pass=***&db=1",
            ),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("sqlite://sessions.sqlite3", "sqlite://sessions.sqlite3"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret"));
        }
    }

    #[test]
    fn sqlite_file_follows_sqlx() {
        assert_eq!(
            sqlite_file("sqlite://sessions.sqlite3"),
            Some("sessions.sqlite3".into())
        );
        assert_eq!(
            sqlite_file("sqlite:///var/db/s.db?mode=rwc"),
            Some("/var/db/s.db".into())
        );
        assert_eq!(sqlite_file("sqlite:s.db"), Some("s.db".into()));
        assert_eq!(
            sqlite_file("sqlite://my%20db.sqlite3"),
            Some("my db.sqlite3".into())
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://:memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=ro"), None);
        assert_eq!(sqlite_file("postgres://db/app"), None);
    }
}
