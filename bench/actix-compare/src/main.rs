//! HTTP end to end, session-actix against actix-session, both over Redis on the same
//! actix-web: a handler that increments a counter in the session, 32 keep-alive connections
//! (one browser session each), alternated rounds, requests per second and p99 latency.
//!
//! ```text
//! cd bench/actix-compare && cargo run --release -- [seconds per round] [rounds]
//! ```
//!
//! Redis comes from `SESSION_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Each server
//! runs in a process of its own (this binary, `serve ours|theirs <port>`), with two workers.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use actix_web::{App, HttpServer, web};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 32;

fn redis_url() -> String {
    std::env::var("SESSION_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn ours(session: session_core::Session) -> Result<String, session_core::SessionError> {
    let count = session.get::<u64>("counter").await?.unwrap_or(0) + 1;
    session.insert("counter", count).await?;
    Ok(count.to_string())
}

async fn theirs(session: actix_session::Session) -> actix_web::Result<String> {
    let count = session.get::<u64>("counter")?.unwrap_or(0) + 1;
    session.insert("counter", count)?;
    Ok(count.to_string())
}

fn serve(which: &str, port: u16) {
    actix_web::rt::System::new().block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let url = redis_url();
        let server = match which {
            "ours" => {
                let config =
                    session_cache::RedisConfig::new().prefix(format!("bench-ours-{port}:"));
                let store = session_cache::RedisStore::new(&url, config).expect("redis");
                let sessions = session_actix::SessionMiddleware::new(
                    store,
                    session_core::SessionConfig::default(),
                );
                HttpServer::new(move || {
                    App::new()
                        .wrap(sessions.clone())
                        .route("/", web::get().to(ours))
                })
                .workers(2)
                .listen(listener)
                .expect("listen")
                .run()
            }
            _ => {
                let store = actix_session::storage::RedisSessionStore::new(url)
                    .await
                    .expect("redis");
                let key = actix_web::cookie::Key::generate();
                HttpServer::new(move || {
                    App::new()
                        .wrap(actix_session::SessionMiddleware::new(
                            store.clone(),
                            key.clone(),
                        ))
                        .route("/", web::get().to(theirs))
                })
                .workers(2)
                .listen(listener)
                .expect("listen")
                .run()
            }
        };
        server.await.expect("serve");
    });
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port()
}

/// One browser on one keep-alive connection: sends its cookies, keeps what it is sent.
/// Returns each request's latency.
async fn browser(port: u16, until: Instant) -> Vec<Duration> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut buffer = Vec::with_capacity(4096);
    let mut last = 0u64;
    while Instant::now() < until {
        let cookie = cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            "GET / HTTP/1.1\r\nHost: bench\r\n\r\n".to_owned()
        } else {
            format!("GET / HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\n\r\n")
        };
        let started = Instant::now();
        stream.write_all(request.as_bytes()).await.expect("write");
        buffer.clear();
        let (head_end, length) = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buffer[..end]).expect("ASCII head");
                let length = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                break (end + 4, length);
            }
        };
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            buffer.extend_from_slice(&chunk[..n]);
        }
        latencies.push(started.elapsed());
        let head = std::str::from_utf8(&buffer[..head_end]).expect("ASCII head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        for line in head.lines() {
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("set-cookie")
                && let Some((pair, _)) = value.trim().split_once(';').or(Some((value.trim(), "")))
                && let Some((cookie, value)) = pair.split_once('=')
            {
                cookies.insert(cookie.to_owned(), value.to_owned());
            }
        }
        let body = std::str::from_utf8(&buffer[head_end..head_end + length]).expect("body");
        let count: u64 = body.parse().expect("the counter");
        assert_eq!(count, last + 1, "the session keeps counting");
        last = count;
    }
    latencies
}

/// One round of load on `port`: requests per second and p99 latency (ms).
async fn round(port: u16, seconds: f64) -> (f64, f64) {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(browser(port, until)))
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a browser"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)].as_secs_f64() * 1e3;
    (all.len() as f64 / elapsed, p99)
}

fn spawn_server(which: &str, port: u16) -> Child {
    Command::new(std::env::current_exe().expect("this binary"))
        .args(["serve", which, &port.to_string()])
        .spawn()
        .expect("start a server")
}

async fn wait_ready(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server on {port} did not start");
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve(&args[2], args[3].parse().expect("a port"));
        return;
    }
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(6);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (our_port, their_port) = (free_port(), free_port());
        let mut servers = [
            spawn_server("ours", our_port),
            spawn_server("theirs", their_port),
        ];
        wait_ready(our_port).await;
        wait_ready(their_port).await;
        // Warm both up (connections, Redis, caches).
        round(our_port, 1.0).await;
        round(their_port, 1.0).await;
        let (mut our_rps, mut their_rps, mut our_p99, mut their_p99, mut ratios) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for n in 0..rounds {
            let order = if n % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            let mut this = [(0.0, 0.0); 2];
            for ours_first in order {
                let port = if ours_first { our_port } else { their_port };
                let measured = round(port, seconds).await;
                this[usize::from(!ours_first)] = measured;
            }
            let [(ours, ours_p99), (theirs, theirs_p99)] = this;
            println!(
                "RESULT round={n} ours_rps={ours:.0} theirs_rps={theirs:.0} ratio={:.2} \
                 ours_p99_ms={ours_p99:.2} theirs_p99_ms={theirs_p99:.2}",
                ours / theirs
            );
            our_rps.push(ours);
            their_rps.push(theirs);
            our_p99.push(ours_p99);
            their_p99.push(theirs_p99);
            ratios.push(ours / theirs);
        }
        println!(
            "SUMMARY connections={CONNECTIONS} rounds={rounds} seconds={seconds} \
             ratio_median={:.2} ratio_min={:.2} ratio_max={:.2} ours_rps={:.0} theirs_rps={:.0} \
             ours_p99_ms={:.2} theirs_p99_ms={:.2}",
            median(ratios.clone()),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
            median(our_rps),
            median(their_rps),
            median(our_p99),
            median(their_p99)
        );
        for server in &mut servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    });
}
