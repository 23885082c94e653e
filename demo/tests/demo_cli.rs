//! The `demo` and `clearsessions` binaries as a user runs them: the start-up line says where
//! sessions are stored without showing a password, a bad `SESSION_FILE_PATH` is named, the
//! files the demo creates are private, and `clearsessions` says plainly when an engine has
//! nothing to clear. Each run gets a fresh working directory and a clean environment.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use session_core::time::OffsetDateTime;
use session_core::{Session, SessionConfig, SessionStore};
use session_db::SqliteStore;
use session_testkit::services::{self, Service};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const DEMO: &str = env!("CARGO_BIN_EXE_demo");
const CLEARSESSIONS: &str = env!("CARGO_BIN_EXE_clearsessions");

/// A password no real server here has: the servers under test trust local connections.
const PASSWORD: &str = "hunter2-in-the-url";

/// `bin` in `cwd` with only `vars` set (and `PORT=0`, a free port).
fn command(bin: &str, cwd: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin);
    command
        .current_dir(cwd)
        .env_clear()
        .env("PORT", "0")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts the demo and returns its start-up line and what it logged until then; the demo is
/// stopped afterwards.
async fn start_up(cwd: &Path, vars: &[(&str, &str)]) -> (String, String) {
    let mut child = command(DEMO, cwd, vars).spawn().expect("start the demo");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    // Give the logger a moment to flush what it wrote before the line.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr).await;
    }
    match line {
        Ok(Ok(Some(line))) => (line, stderr),
        other => panic!("no start-up line ({other:?}); stderr:\n{stderr}"),
    }
}

/// Runs `bin` to its end (30 s at most).
async fn run(bin: &str, cwd: &Path, vars: &[(&str, &str)]) -> Output {
    let child = command(bin, cwd, vars).spawn().expect("start");
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("finished within 30 s")
        .expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A fresh working directory, by its canonical path (as the demo sees it).
fn workdir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().canonicalize().expect("canonical");
    (dir, path)
}

/// `url` with `password` in its user info (replacing one already there), and the password
/// it then holds.
fn with_password(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let user = rest
        .rsplit_once('@')
        .map(|(info, _)| info.split(':').next().unwrap_or(user))
        .filter(|u| !u.is_empty())
        .unwrap_or(user);
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test]
async fn file_default_directory_is_private_under_the_working_directory() {
    let (_dir, cwd) = workdir();
    let (line, stderr) = start_up(&cwd, &[("SESSION_ENGINE", "file")]).await;
    let sessions = cwd.join("sessions");
    assert!(
        line.contains(&sessions.display().to_string()),
        "{line}\n{stderr}"
    );
    assert!(line.contains("file engine"), "{line}");
    assert!(sessions.is_dir());
    assert_eq!(mode(&sessions), 0o700, "the session directory is private");
}

#[tokio::test]
async fn file_bad_path_error_names_it() {
    let (_dir, cwd) = workdir();
    let file = cwd.join("not-a-directory");
    std::fs::write(&file, b"").expect("write");
    for path in [file.clone(), file.join("sessions")] {
        let path = path.display().to_string();
        let output = run(
            DEMO,
            &cwd,
            &[("SESSION_ENGINE", "file"), ("SESSION_FILE_PATH", &path)],
        )
        .await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&path), "the error names {path}: {stderr}");
        assert!(text(&output.stdout).is_empty(), "no start-up line");
    }
}

#[tokio::test]
async fn sqlite_default_database_file_is_private() {
    let (_dir, cwd) = workdir();
    let (line, stderr) = start_up(&cwd, &[]).await;
    let database = cwd.join("sessions.sqlite3");
    assert!(
        line.contains(&database.display().to_string()) && line.contains("db engine"),
        "{line}\n{stderr}"
    );
    assert_eq!(mode(&database), 0o600, "{}", database.display());
    for suffix in ["-wal", "-shm"] {
        let side = cwd.join(format!("sessions.sqlite3{suffix}"));
        if side.exists() {
            assert_eq!(mode(&side), 0o600, "{}", side.display());
        }
    }
}

/// Through the library: the database file and SQLite's WAL and shared-memory files beside
/// it, created while a session is written, are all 0600.
#[tokio::test]
async fn sqlite_open_store_creates_private_files() {
    let (_dir, cwd) = workdir();
    let database = cwd.join("private.sqlite3");
    let url = format!("sqlite://{}", database.display());
    let settings = demo::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        _ => None,
    })
    .expect("settings");
    let store = demo::open_store(&settings).await.expect("open");
    let session = Session::new(store.clone(), Arc::new(SessionConfig::default()));
    session.insert("user_id", 1).await.expect("insert");
    session.save().await.expect("save");
    assert_eq!(mode(&database), 0o600);
    let mut seen = 0;
    for suffix in ["-wal", "-shm"] {
        let side = cwd.join(format!("private.sqlite3{suffix}"));
        if side.exists() {
            seen += 1;
            assert_eq!(mode(&side), 0o600, "{}", side.display());
        }
    }
    assert_eq!(seen, 2, "WAL mode keeps -wal and -shm files while open");
}

#[tokio::test]
async fn sqlite_readable_database_file_is_warned_about() {
    let (_dir, cwd) = workdir();
    let database = cwd.join("sessions.sqlite3");
    std::fs::write(&database, b"").expect("write");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (_line, stderr) = start_up(&cwd, &[]).await;
    assert!(
        stderr.contains("WARN") && stderr.contains("sessions.sqlite3") && stderr.contains("0644"),
        "{stderr}"
    );
}

#[tokio::test]
async fn memory_start_up_line_says_sessions_stay_in_the_process() {
    let (_dir, cwd) = workdir();
    let (line, _) = start_up(&cwd, &[("SESSION_ENGINE", "memory")]).await;
    assert!(
        line.contains("memory engine") && line.contains("this process"),
        "{line}"
    );
    assert!(line.contains("http://127.0.0.1:"), "{line}");
}

#[tokio::test]
async fn postgres_start_up_line_hides_the_password() {
    let Some(url) = services::require(Service::Postgres) else {
        return;
    };
    let url = with_password(&url, "postgres", PASSWORD);
    let (_dir, cwd) = workdir();
    let (line, stderr) = start_up(&cwd, &[("DATABASE_URL", &url)]).await;
    assert!(
        !line.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{line}\n{stderr}"
    );
    let host = url.rsplit_once('@').map(|(_, host)| host).expect("host");
    assert!(line.contains(&format!(":***@{host}")), "{line}");
}

#[tokio::test]
async fn mysql_bad_password_error_hides_it() {
    let Some(url) = services::require(Service::MySql) else {
        return;
    };
    // MariaDB checks passwords: a wrong one stops start-up, and the error must not show it.
    let url = with_password(&url, "root", PASSWORD);
    let (_dir, cwd) = workdir();
    let output = run(DEMO, &cwd, &[("DATABASE_URL", &url)]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(
        stderr.contains(":***@"),
        "the error says which server: {stderr}"
    );
}

/// Redis connects lazily, so no server is needed to see the start-up line.
#[tokio::test]
async fn redis_start_up_line_hides_the_password() {
    let (_dir, cwd) = workdir();
    let url = format!("redis://default:{PASSWORD}@127.0.0.1:6379/0");
    let (line, stderr) = start_up(&cwd, &[("SESSION_ENGINE", "cache"), ("REDIS_URL", &url)]).await;
    assert!(
        !line.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{line}\n{stderr}"
    );
    assert!(
        line.contains("redis://default:***@127.0.0.1:6379/0"),
        "{line}"
    );
}

#[tokio::test]
async fn cached_start_up_line_names_both_stores() {
    let (_dir, cwd) = workdir();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:6379");
    let (line, stderr) = start_up(
        &cwd,
        &[("SESSION_ENGINE", "cached_db"), ("REDIS_URL", &url)],
    )
    .await;
    assert!(!line.contains(PASSWORD), "{line}\n{stderr}");
    assert!(line.contains("redis://:***@127.0.0.1:6379"), "{line}");
    assert!(
        line.contains(&cwd.join("sessions.sqlite3").display().to_string()),
        "{line}"
    );
}

#[tokio::test]
async fn memory_clearsessions_says_nothing_to_clear() {
    let (_dir, cwd) = workdir();
    let output = run(CLEARSESSIONS, &cwd, &[("SESSION_ENGINE", "memory")]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("nothing to clear"), "{stdout}");
    assert!(!stdout.contains("Deleted"), "{stdout}");
}

/// No Redis server is needed: there is nothing to ask it.
#[tokio::test]
async fn redis_clearsessions_says_redis_expires_sessions_itself() {
    let (_dir, cwd) = workdir();
    let output = run(
        CLEARSESSIONS,
        &cwd,
        &[
            ("SESSION_ENGINE", "cache"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ],
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("Redis expires sessions by itself") && stdout.contains("nothing to clear"),
        "{stdout}"
    );
}

#[tokio::test]
async fn sqlite_clearsessions_counts_what_it_deletes() {
    let (_dir, cwd) = workdir();
    let url = format!("sqlite://{}", cwd.join("sessions.sqlite3").display());
    {
        let store = SqliteStore::connect(&url).await.expect("sqlite");
        store.migrate().await.expect("migrate");
        let session = Session::new(Arc::new(store.clone()), Arc::new(SessionConfig::default()));
        session.insert("user_id", 1).await.expect("insert");
        session.save().await.expect("save");
        let key = session.session_key().expect("a key");
        let past = OffsetDateTime::now_utc() - session_core::time::Duration::seconds(1);
        store.touch(&key.record_id(), past).await.expect("expire");
        store.pool().close().await;
    }
    let output = run(CLEARSESSIONS, &cwd, &[("DATABASE_URL", &url)]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("Deleted 1 expired session "), "{stdout}");
    let output = run(CLEARSESSIONS, &cwd, &[("DATABASE_URL", &url)]).await;
    assert!(
        text(&output.stdout).contains("Deleted 0 expired sessions "),
        "{}",
        text(&output.stdout)
    );
}
