//! A `redis-server` the test starts itself, on a free loopback port, to stop and restart.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use session_testkit::services;
use tokio::process::{Child, Command};

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `redis-server` on `port` (no persistence) and waits until it answers; `None` when
/// the binary is missing (a loud skip, or a failure under `SESSION_TEST_REQUIRE=1`). The
/// server stops when the child is dropped.
pub async fn start_redis(port: u16) -> Option<Child> {
    start_redis_in(port, None).await
}

/// Starts `redis-server` on `port` keeping its snapshot (`dump.rdb`, written by `SAVE`) in
/// `dir`, which a restart in the same `dir` loads back. As [`start_redis`] otherwise.
pub async fn start_redis_in(port: u16, dir: Option<&std::path::Path>) -> Option<Child> {
    let mut args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
    ];
    if let Some(dir) = dir {
        args.extend(["--dir".into(), dir.display().to_string()]);
    }
    let spawned = Command::new("redis-server")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(error) => {
            services::skip(
                "own-redis-server",
                &format!("redis-server could not be started: {error}"),
            );
            return None;
        }
    };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    for _ in 0..100 {
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return Some(child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on port {port} did not answer");
}
