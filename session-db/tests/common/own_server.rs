//! Database servers a test starts, stops and starts again by itself, on a free port in a
//! temporary directory: the fault tests need a server they may kill, never the shared one.
//!
//! A missing binary prints a loud `SKIPPED <what>` line (the test then returns), or fails the
//! test under `SESSION_TEST_REQUIRE=1`. Every server is stopped when its guard drops, so a
//! failing test never leaves one running.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_testkit::services;

/// How long a server may take to start before the test fails.
const START_WITHIN: Duration = Duration::from_secs(30);

/// A password placed in every URL, so tests can check it never shows in an error.
pub const PASSWORD: &str = "s3cret-Pa55word";

/// Reports a missing tool: `None` (after a loud skip line), or a panic under
/// `SESSION_TEST_REQUIRE=1`.
fn missing<T>(what: &str, why: &str) -> Option<T> {
    services::skip(what, why);
    None
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The first of `names` found in one of `dirs` or on `PATH`.
fn find_binary(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let search: Vec<PathBuf> = dirs
        .iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .collect();
    names
        .iter()
        .flat_map(|name| search.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs `command` to completion, panicking with its output when it fails.
fn run(mut command: Command, what: &str) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `ready` every 50 ms until it holds, for at most [`START_WITHIN`].
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_WITHIN;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} not ready within {START_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A PostgreSQL cluster of this test's own (`initdb` + `pg_ctl`), run as the `postgres` user
/// when the test runs as root.
pub struct OwnPostgres {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl OwnPostgres {
    /// Creates and starts a cluster, or `None` (skipped) when PostgreSQL's server binaries are
    /// not installed.
    pub fn start() -> Option<Self> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .collect();
        dirs.sort();
        dirs.reverse(); // the newest major version first
        let Some(initdb) = find_binary(&["initdb"], &dirs) else {
            return missing("postgres server (own cluster)", "initdb was not found");
        };
        let bindir = initdb.parent().expect("a directory").to_path_buf();
        if !bindir.join("pg_ctl").is_file() {
            return missing("postgres server (own cluster)", "pg_ctl was not found");
        }
        // PostgreSQL refuses to run as root: then it runs as `postgres`, in a directory under
        // /tmp (which that user can reach) given to it.
        let as_postgres = is_root();
        let has_user = || {
            Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if as_postgres && !has_user() {
            return missing(
                "postgres server (own cluster)",
                "running as root and there is no `postgres` user to run it as",
            );
        }
        let dir = if as_postgres {
            tempfile::tempdir_in("/tmp")
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("postgres").arg(dir.path());
            run(chown, "chown postgres <tmpdir>");
        }
        let mut server = Self {
            bindir,
            dir,
            port: free_port(),
            as_postgres,
            running: false,
        };
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(server.data())
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
        run(initdb, "initdb");
        server.start_again();
        Some(server)
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `postgres`, with [`PASSWORD`] in it (trust authentication ignores it).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Starts the (stopped) cluster on the same port and data directory; returns once it
    /// accepts connections.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=30",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &options, "-w", "-t", "30", "start"]);
        run(start, "pg_ctl start");
        self.running = true;
        let port = self.port;
        wait_until("PostgreSQL", || port_answers(port));
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop(&mut self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
        run(stop, "pg_ctl stop");
        self.running = false;
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if stop.status().is_ok_and(|status| status.success()) {
            return;
        }
        // pg_ctl failed: kill the postmaster by the PID it recorded.
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned));
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

/// A MariaDB (or MySQL) server of this test's own, with its own data directory, socket and
/// port, and grant tables skipped (any user and password are accepted).
pub struct OwnMariaDb {
    server: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_root: bool,
    child: Option<Child>,
}

impl OwnMariaDb {
    /// Creates a data directory and starts a server, or `None` (skipped) when the server
    /// binaries are not installed.
    pub fn start() -> Option<Self> {
        let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")];
        let Some(server) = find_binary(&["mariadbd", "mysqld"], &sbin) else {
            return missing("mysql server (own mariadbd)", "mariadbd was not found");
        };
        let Some(install) = find_binary(&["mariadb-install-db", "mysql_install_db"], &sbin) else {
            return missing(
                "mysql server (own mariadbd)",
                "mariadb-install-db was not found",
            );
        };
        let as_root = is_root();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut this = Self {
            server,
            dir,
            port: free_port(),
            as_root,
            child: None,
        };
        let mut init = Command::new(install);
        init.arg("--no-defaults")
            .arg(format!("--datadir={}", this.data().display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(this.speed_flags());
        if as_root {
            init.arg("--user=root");
        }
        run(init, "mariadb-install-db");
        this.start_again();
        Some(this)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Small, unsynced files: the test needs a server, not durability across power loss.
    fn speed_flags(&self) -> [&'static str; 4] {
        [
            "--innodb-log-file-size=4M",
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-doublewrite=0",
            "--innodb-buffer-pool-size=16M",
        ]
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `fault` (created at start), with [`PASSWORD`] in it.
    pub fn url(&self) -> String {
        format!("mysql://root:{PASSWORD}@127.0.0.1:{}/fault", self.port)
    }

    /// A URL naming no database.
    pub fn server_url(&self) -> String {
        format!("mysql://root:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    fn ready_lines(log: &Path) -> usize {
        std::fs::read_to_string(log)
            .map(|text| text.matches("ready for connections").count())
            .unwrap_or(0)
    }

    /// Starts the (stopped) server on the same port and data directory; returns once it
    /// reports itself ready and its port answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = self.log();
        let before = Self::ready_lines(&log);
        let mut command = Command::new(&self.server);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data().display()))
            .arg(format!(
                "--socket={}",
                self.dir.path().join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--skip-log-bin",
            ])
            .args(self.speed_flags())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.as_root {
            command.arg("--user=root");
        }
        self.child = Some(command.spawn().expect("spawn mariadbd"));
        let port = self.port;
        wait_until("MariaDB", || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("mariadbd exited ({status}):\n{text}");
            }
            Self::ready_lines(&log) > before && port_answers(port)
        });
    }

    /// Kills the server (SIGKILL, as a crash) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnMariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}
