//! Where the test services are: `SESSION_TEST_*` URLs, else (feature `testcontainers`, with a
//! Docker engine answering) a container started once per test process, else a loud skip.
//!
//! | service | variable |
//! |---|---|
//! | PostgreSQL | `SESSION_TEST_POSTGRES_URL` |
//! | MySQL / MariaDB | `SESSION_TEST_MYSQL_URL` |
//! | Redis | `SESSION_TEST_REDIS_URL` |
//! | Redis Cluster | `SESSION_TEST_REDIS_CLUSTER_URLS` (comma-separated) |
//! | Django (a virtual environment's `python`) | `SESSION_TEST_DJANGO_PYTHON`, else the one `ci/django.sh` creates |
//!
//! With `SESSION_TEST_REQUIRE=1` a missing service fails the test instead of skipping it.

use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// A server some engine's tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// A single Redis server.
    Redis,
    /// A Redis Cluster (its URLs, comma-separated).
    RedisCluster,
    /// Real Django: the `python` of a virtual environment with the pinned Django and its
    /// database drivers (`ci/django.sh` creates it); its "URL" is that path.
    Django,
}

/// Where `ci/django.sh` puts the Django environment's python, under `$HOME`.
pub const DJANGO_DEFAULT_PYTHON: &str = ".cache/session-django/venv-5.2.19/bin/python";

impl Service {
    /// The environment variable naming the service's URL.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Postgres => "SESSION_TEST_POSTGRES_URL",
            Self::MySql => "SESSION_TEST_MYSQL_URL",
            Self::Redis => "SESSION_TEST_REDIS_URL",
            Self::RedisCluster => "SESSION_TEST_REDIS_CLUSTER_URLS",
            Self::Django => "SESSION_TEST_DJANGO_PYTHON",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
            Self::Redis => "redis",
            Self::RedisCluster => "redis-cluster",
            Self::Django => "django",
        })
    }
}

/// Whether `SESSION_TEST_REQUIRE=1` (or `true`) is set: missing services fail tests.
pub fn required() -> bool {
    std::env::var("SESSION_TEST_REQUIRE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The service's URL from its variable or a container, without skipping or failing.
pub fn url(service: Service) -> Option<String> {
    match std::env::var(service.env_var()) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if service == Service::Django => {
            let python =
                std::path::Path::new(&std::env::var_os("HOME")?).join(DJANGO_DEFAULT_PYTHON);
            python.exists().then(|| python.display().to_string())
        }
        _ => container::url(service),
    }
}

/// The service's URL; when there is none, prints a loud `SKIPPED <service>` line (straight to
/// the terminal, past the test harness's capture) and returns `None`.
///
/// # Panics
///
/// When the service is missing and `SESSION_TEST_REQUIRE=1` is set.
pub fn require(service: Service) -> Option<String> {
    if let Some(url) = url(service) {
        return Some(url);
    }
    if required() {
        panic!(
            "{service} is required (SESSION_TEST_REQUIRE=1) but {} is not set{}",
            service.env_var(),
            hint(service)
        );
    }
    announce_skip(service);
    None
}

/// How to get the service besides its variable.
fn hint(service: Service) -> &'static str {
    match service {
        Service::Django => ", or run ci/django.sh to create the Django environment",
        _ => container::HINT,
    }
}

/// Prints the skip line once per service and process, and records the test in the skip log.
fn announce_skip(service: Service) {
    let why = format!(
        "set {} to run these tests{}",
        service.env_var(),
        hint(service)
    );
    announce(&service.to_string(), &why);
}

/// Skips the calling test for a reason other than a missing service (a binary that is not
/// installed, say): prints a loud `SKIPPED <group>` line once per group and process and
/// records the test in the skip log that `ci/test.sh` sums up. The caller then returns.
///
/// # Panics
///
/// Under `SESSION_TEST_REQUIRE=1`: then nothing may be skipped.
pub fn skip(group: &str, why: &str) {
    if required() {
        panic!("{group} is required (SESSION_TEST_REQUIRE=1) but the test cannot run: {why}");
    }
    announce(group, why);
}

/// The environment variable naming the file where every skipped test is recorded (one
/// `<group>\t<test>` line each); `ci/test.sh` sets it and prints the summary.
pub const SKIP_LOG_VAR: &str = "SESSION_TEST_SKIP_LOG";

fn announce(group: &str, why: &str) {
    static ANNOUNCED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let announced = ANNOUNCED.get_or_init(Default::default);
    let first = announced
        .lock()
        .map(|mut set| set.insert(group.to_owned()))
        .unwrap_or(true);
    if first {
        let line =
            format!("\nSKIPPED {group}: {why} (SESSION_TEST_REQUIRE=1 makes this an error)\n");
        // Written to the process's stderr directly, so `cargo test` shows it even on success.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    record_skip(group);
}

/// Appends the current test (libtest names each test's thread after it) to the skip log.
fn record_skip(group: &str) {
    let Some(path) = std::env::var_os(SKIP_LOG_VAR) else {
        return;
    };
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed test");
    let line = format!("{group}\t{test}\n");
    // One short append per line: concurrent test processes do not interleave within it.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(error) = written {
        let _ = writeln!(
            std::io::stderr(),
            "could not record a skipped test in {path:?}: {error}"
        );
    }
}

#[cfg(not(feature = "testcontainers"))]
mod container {
    use super::Service;

    pub(super) const HINT: &str = ", or enable the `testcontainers` feature with Docker running";

    pub(super) fn url(_service: Service) -> Option<String> {
        None
    }
}

#[cfg(feature = "testcontainers")]
mod container {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::SyncRunner;
    use testcontainers::{Container, ContainerRequest, GenericImage, ImageExt};

    use super::Service;

    pub(super) const HINT: &str = " (no Docker engine answered for a container)";

    /// Started containers live as long as the test process.
    type Started = Mutex<HashMap<Service, Option<(String, Container<GenericImage>)>>>;

    pub(super) fn url(service: Service) -> Option<String> {
        static STARTED: OnceLock<Started> = OnceLock::new();
        let started = STARTED.get_or_init(Default::default);
        let mut started = started.lock().ok()?;
        started
            .entry(service)
            .or_insert_with(|| start(service))
            .as_ref()
            .map(|(url, _)| url.clone())
    }

    fn start(service: Service) -> Option<(String, Container<GenericImage>)> {
        let (image, port, ready): (ContainerRequest<GenericImage>, u16, &str) = match service {
            Service::Postgres => (
                GenericImage::new("postgres", "16-alpine")
                    .with_wait_for(WaitFor::message_on_stderr(
                        "database system is ready to accept connections",
                    ))
                    .with_exposed_port(5432.tcp())
                    .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
                    .with_env_var("POSTGRES_DB", "test"),
                5432,
                "postgres://postgres@{host}:{port}/test",
            ),
            Service::MySql => (
                GenericImage::new("mariadb", "11")
                    .with_wait_for(WaitFor::message_on_stderr("ready for connections"))
                    .with_exposed_port(3306.tcp())
                    .with_env_var("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1")
                    .with_env_var("MARIADB_DATABASE", "test"),
                3306,
                "mysql://root@{host}:{port}/test",
            ),
            Service::Redis => (
                GenericImage::new("redis", "7-alpine")
                    .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
                    .with_exposed_port(6379.tcp())
                    .into(),
                6379,
                "redis://{host}:{port}",
            ),
            Service::RedisCluster | Service::Django => return None,
        };
        let container = image.start().ok()?;
        let host = container.get_host().ok()?.to_string();
        let mapped = container.get_host_port_ipv4(port.tcp()).ok()?;
        let url = ready
            .replace("{host}", &host)
            .replace("{port}", &mapped.to_string());
        Some((url, container))
    }
}
