//! Real Django for the tests: the virtual environment `ci/django.sh` creates, the minimal
//! project in `tests/django`, one database per engine (migrated by Django's own `migrate`),
//! and `bridge.py`, which runs Django's session and auth code on request.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use session_db::sqlx;
use session_django::DjangoStore;
use session_django::signing::Keys;
use session_testkit::services::{self, Service};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

/// The secret both sides use.
pub const SECRET: &str = "rust-django-interop-secret-key-0123456789";

/// The database a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    MySql,
}

/// Django, set up on one database.
#[derive(Debug, Clone)]
pub struct Django {
    python: PathBuf,
    /// The URL both Django and the Rust store use.
    pub url: String,
}

/// The Django project, found from the workspace root (this module is shared with the
/// demo's tests, and both crates sit at the root).
fn project() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("session-django/tests/django")
}

/// The database `session_django` next to the shared test database of `url`, created if
/// missing.
async fn dedicated(db: Db, url: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    let dedicated = format!("{base}/session_django");
    match db {
        Db::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url)
                .await
                .expect("connect to PostgreSQL");
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = 'session_django'")
                    .fetch_optional(&mut conn)
                    .await
                    .expect("look for the database");
            if exists.is_none() {
                // Two processes may race here; the loser's error is harmless.
                let _ = sqlx::query("CREATE DATABASE session_django")
                    .execute(&mut conn)
                    .await;
            }
        }
        Db::MySql => {
            use sqlx::Connection;
            let mut conn = sqlx::MySqlConnection::connect(url)
                .await
                .expect("connect to MariaDB");
            sqlx::query("CREATE DATABASE IF NOT EXISTS session_django CHARACTER SET utf8mb4")
                .execute(&mut conn)
                .await
                .expect("create the database");
        }
        Db::Sqlite => unreachable!(),
    }
    dedicated
}

/// Django on `db`, migrated once per test process; `None` (after a loud skip, or a failure
/// under `SESSION_TEST_REQUIRE=1`) when the environment or the server is missing.
pub async fn django(db: Db) -> Option<Django> {
    static SQLITE: OnceCell<Django> = OnceCell::const_new();
    static POSTGRES: OnceCell<Django> = OnceCell::const_new();
    static MYSQL: OnceCell<Django> = OnceCell::const_new();
    let python = PathBuf::from(services::require(Service::Django)?);
    let url = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(services::require(Service::Postgres)?),
        Db::MySql => Some(services::require(Service::MySql)?),
    };
    let cell = match db {
        Db::Sqlite => &SQLITE,
        Db::Postgres => &POSTGRES,
        Db::MySql => &MYSQL,
    };
    let django = cell
        .get_or_init(|| async move {
            let url = match (db, url) {
                (Db::Sqlite, _) => {
                    let dir = tempfile::Builder::new()
                        .prefix("session-django-")
                        .tempdir()
                        .expect("a temporary directory")
                        .keep();
                    format!("sqlite://{}", dir.join("django.sqlite3").display())
                }
                (_, Some(url)) => dedicated(db, &url).await,
                (_, None) => unreachable!(),
            };
            let django = Django { python, url };
            django.manage(&["migrate", "--noinput", "-v", "0"]).await;
            if db == Db::Sqlite {
                // As DjangoStore's docs advise: WAL, so a write is not three fsyncs and
                // readers do not wait on writers (Django works the same on it).
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&django.url)
                    .await
                    .expect("open Django's database");
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&mut conn)
                    .await
                    .expect("WAL mode");
                conn.close().await.expect("close");
            }
            django
        })
        .await;
    Some(django.clone())
}

impl Django {
    fn command(&self, program_args: &[&str], keys: &Keys) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.python);
        command
            .args(program_args)
            .current_dir(project())
            .env("SECRET_KEY", keys.current())
            .env("SECRET_KEY_FALLBACKS", keys.fallbacks().join(","))
            .env("DJANGO_DATABASE_URL", &self.url)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true);
        command
    }

    /// Runs `manage.py` with these arguments.
    pub async fn manage(&self, args: &[&str]) {
        let mut all = vec!["manage.py"];
        all.extend_from_slice(args);
        let output = self
            .command(&all, &Keys::new(SECRET))
            .output()
            .await
            .expect("run manage.py");
        assert!(
            output.status.success(),
            "manage.py {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs operations through `bridge.py` with the shared secret.
    pub async fn run(&self, ops: Value) -> Vec<Value> {
        self.run_with(ops, &Keys::new(SECRET)).await
    }

    /// Runs operations through `bridge.py` with these keys.
    pub async fn run_with(&self, ops: Value, keys: &Keys) -> Vec<Value> {
        self.run_on("django.contrib.sessions.backends.db", ops, keys)
            .await
    }

    /// Runs operations through `bridge.py` on this `SESSION_ENGINE`, with these keys.
    pub async fn run_on(&self, engine: &str, ops: Value, keys: &Keys) -> Vec<Value> {
        let mut child = self
            .command(&["bridge.py"], keys)
            .env("DJANGO_SESSION_ENGINE", engine)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bridge.py");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(ops.to_string().as_bytes())
            .await
            .expect("write the operations");
        drop(stdin);
        let output = child.wait_with_output().await.expect("bridge.py ran");
        assert!(
            output.status.success(),
            "bridge.py failed on {ops}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        match serde_json::from_slice(&output.stdout) {
            Ok(Value::Array(results)) => results,
            other => panic!("bridge.py printed {other:?}"),
        }
    }

    /// One operation.
    pub async fn one(&self, op: Value) -> Value {
        self.run(json!([op])).await.remove(0)
    }

    /// The Rust store on Django's table, with these keys.
    pub async fn store(&self, keys: Keys) -> DjangoStore {
        let store = DjangoStore::connect(&self.url, keys)
            .await
            .expect("connect the Rust store");
        store.check_table().await.expect("Django's table is there");
        store
    }
}

/// A copy of a migrated SQLite Django database, for a case of its own (no lock waits on a
/// file other cases use): its URL, and the directory that holds it until dropped.
pub fn sqlite_copy(django: &Django) -> (String, tempfile::TempDir) {
    let source = django.url.trim_start_matches("sqlite://").to_owned();
    let dir = tempfile::tempdir().expect("a directory");
    let copy = dir.path().join("django.sqlite3");
    std::fs::copy(&source, &copy).expect("copy Django's database");
    (format!("sqlite://{}", copy.display()), dir)
}
