//! The SQL workloads of `BENCHMARKS.md`, each against a baseline in the same run: the
//! statements tower-sessions' sqlx stores issue (an upsert into a table with no expiry index),
//! on the same driver and the same pool.
//!
//! - **W1**: load a five-key session, increment a counter, save with a sliding two-week
//!   expiry; one task, then 32 concurrent tasks.
//! - **W2**: login storm: 32 tasks create new sessions.
//! - **W3**: 9 requests that only read for 1 that writes, every request extending the expiry
//!   (`save_every_request`), 32 tasks; with `touch_threshold` off, then at 0.8.
//! - **W6**: `clear_expired` over 1,000,000 rows of which 10% are expired, while W1 runs with
//!   32 tasks (its p99 is reported); the baseline's full-table `DELETE … WHERE expiry_date < now`
//!   for comparison.
//!
//! ```text
//! SESSION_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//! SESSION_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test \
//!   cargo bench -p session-db --bench workloads
//! ```
//!
//! `BENCH_SECONDS` (default 3) is the length of one measurement, `BENCH_ROUNDS` (default 3)
//! how many times each side runs, alternated; `BENCH_ENGINES` (default
//! `postgres,mysql,sqlite`) and `BENCH_WORKLOADS` (default `w1,w2,w3,w6`) pick what runs.
//! An engine whose URL is not set is reported as SKIPPED.
//!
//! The baseline runs on a pool with sqlx's defaults and as many connections as the store's
//! (what a tower-sessions user builds with `PgPool::connect`); `BENCH_SAME_POOL=1` puts it
//! on the store's own pool instead, to compare the statements alone.
#![allow(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use serde_json::{Map, Value};
use session_core::async_trait;
use session_core::time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use session_core::{SessionConfig, SessionKey, SessionManager, SessionStore};
use session_db::{MySqlStore, PostgresStore, SqliteStore};
use session_testkit::fixtures::five_key_entries;
use sqlx::AssertSqlSafe;

const TASKS: usize = 32;
const TWO_WEEKS: Duration = Duration::weeks(2);

/// The statements tower-sessions' sqlx store of one engine issues, on its schema.
#[async_trait]
trait Baseline: Send + Sync + 'static {
    async fn load(&self, id: &str) -> Option<Vec<u8>>;
    /// The upsert of every save.
    async fn save(&self, id: &str, data: &[u8], expiry: OffsetDateTime);
    /// A plain insert.
    async fn insert(&self, id: &str, data: &[u8], expiry: OffsetDateTime);
    /// `DELETE … WHERE expiry_date < now`.
    async fn clear_expired(&self) -> u64;
    /// Fills the table with `rows` sessions, the first `expired` of them expired.
    async fn fill(&self, rows: u64, expired: u64);
}

fn utc(at: OffsetDateTime) -> PrimitiveDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(at.date(), at.time())
}

fn q(text: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(text)
}

struct PgBaseline {
    pool: sqlx::PgPool,
}

#[async_trait]
impl Baseline for PgBaseline {
    async fn load(&self, id: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT data FROM bench_tower WHERE id = $1 AND expiry_date > $2")
            .bind(id)
            .bind(OffsetDateTime::now_utc())
            .fetch_optional(&self.pool)
            .await
            .expect("load")
    }
    async fn save(&self, id: &str, data: &[u8], expiry: OffsetDateTime) {
        sqlx::query(
            "INSERT INTO bench_tower (id, data, expiry_date) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
        )
        .bind(id)
        .bind(data)
        .bind(expiry)
        .execute(&self.pool)
        .await
        .expect("save");
    }
    async fn insert(&self, id: &str, data: &[u8], expiry: OffsetDateTime) {
        sqlx::query("INSERT INTO bench_tower (id, data, expiry_date) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(data)
            .bind(expiry)
            .execute(&self.pool)
            .await
            .expect("insert");
    }
    async fn clear_expired(&self) -> u64 {
        sqlx::query("DELETE FROM bench_tower WHERE expiry_date < $1")
            .bind(OffsetDateTime::now_utc())
            .execute(&self.pool)
            .await
            .expect("clear")
            .rows_affected()
    }
    async fn fill(&self, rows: u64, expired: u64) {
        sqlx::query(
            "INSERT INTO bench_tower (id, data, expiry_date) \
             SELECT 'fill' || n, convert_to($3, 'UTF8'), \
             CASE WHEN n <= $2 THEN now() - interval '1 hour' ELSE now() + interval '14 days' END \
             FROM generate_series(1, $1) AS n",
        )
        .bind(rows as i64)
        .bind(expired as i64)
        .bind(serde_json::to_string(&five_key_entries()).expect("json"))
        .execute(&self.pool)
        .await
        .expect("fill");
    }
}

struct MySqlBaseline {
    pool: sqlx::MySqlPool,
}

#[async_trait]
impl Baseline for MySqlBaseline {
    async fn load(&self, id: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT data FROM bench_tower WHERE id = ? AND expiry_date > ?")
            .bind(id)
            .bind(utc(OffsetDateTime::now_utc()))
            .fetch_optional(&self.pool)
            .await
            .expect("load")
    }
    async fn save(&self, id: &str, data: &[u8], expiry: OffsetDateTime) {
        sqlx::query(
            "INSERT INTO bench_tower (id, data, expiry_date) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE data = VALUES(data), expiry_date = VALUES(expiry_date)",
        )
        .bind(id)
        .bind(data)
        .bind(utc(expiry))
        .execute(&self.pool)
        .await
        .expect("save");
    }
    async fn insert(&self, id: &str, data: &[u8], expiry: OffsetDateTime) {
        sqlx::query("INSERT INTO bench_tower (id, data, expiry_date) VALUES (?, ?, ?)")
            .bind(id)
            .bind(data)
            .bind(utc(expiry))
            .execute(&self.pool)
            .await
            .expect("insert");
    }
    async fn clear_expired(&self) -> u64 {
        sqlx::query("DELETE FROM bench_tower WHERE expiry_date < ?")
            .bind(utc(OffsetDateTime::now_utc()))
            .execute(&self.pool)
            .await
            .expect("clear")
            .rows_affected()
    }
    async fn fill(&self, rows: u64, expired: u64) {
        sqlx::query(q(format!(
            "INSERT INTO bench_tower (id, data, expiry_date) \
             SELECT CONCAT('fill', seq), ?, IF(seq <= ?, UTC_TIMESTAMP() - INTERVAL 1 HOUR, \
             UTC_TIMESTAMP() + INTERVAL 14 DAY) FROM seq_1_to_{rows}"
        )))
        .bind(serde_json::to_vec(&five_key_entries()).expect("json"))
        .bind(expired as i64)
        .execute(&self.pool)
        .await
        .expect("fill");
    }
}

struct SqliteBaseline {
    pool: sqlx::SqlitePool,
}

fn millis(at: OffsetDateTime) -> i64 {
    session_core::record::unix_millis(at)
}

#[async_trait]
impl Baseline for SqliteBaseline {
    async fn load(&self, id: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT data FROM bench_tower WHERE id = ? AND expiry_date > ?")
            .bind(id)
            .bind(millis(OffsetDateTime::now_utc()))
            .fetch_optional(&self.pool)
            .await
            .expect("load")
    }
    async fn save(&self, id: &str, data: &[u8], expiry: OffsetDateTime) {
        sqlx::query(
            "INSERT INTO bench_tower (id, data, expiry_date) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
        )
        .bind(id)
        .bind(data)
        .bind(millis(expiry))
        .execute(&self.pool)
        .await
        .expect("save");
    }
    async fn insert(&self, id: &str, data: &[u8], expiry: OffsetDateTime) {
        sqlx::query("INSERT INTO bench_tower (id, data, expiry_date) VALUES (?, ?, ?)")
            .bind(id)
            .bind(data)
            .bind(millis(expiry))
            .execute(&self.pool)
            .await
            .expect("insert");
    }
    async fn clear_expired(&self) -> u64 {
        sqlx::query("DELETE FROM bench_tower WHERE expiry_date < ?")
            .bind(millis(OffsetDateTime::now_utc()))
            .execute(&self.pool)
            .await
            .expect("clear")
            .rows_affected()
    }
    async fn fill(&self, rows: u64, expired: u64) {
        let now = millis(OffsetDateTime::now_utc());
        sqlx::query(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?1) \
             INSERT INTO bench_tower (id, data, expiry_date) \
             SELECT 'fill' || n, ?3, CASE WHEN n <= ?2 THEN ?4 - 3600000 ELSE ?4 + 1209600000 END \
             FROM seq",
        )
        .bind(rows as i64)
        .bind(expired as i64)
        .bind(serde_json::to_vec(&five_key_entries()).expect("json"))
        .bind(now)
        .execute(&self.pool)
        .await
        .expect("fill");
    }
}

/// Fills our table in bulk: `(rows, expired)`, returning the cleanup's query plan.
type Fill = Box<dyn Fn(u64, u64) -> Pin<Box<dyn Future<Output = String>>>>;

/// One engine: our store, the baseline beside it, and how to fill our table in bulk.
struct Engine {
    name: &'static str,
    store: Arc<dyn SessionStore>,
    baseline: Arc<dyn Baseline>,
    /// Fills our table with `rows` sessions, the first `expired` expired; returns the plan of
    /// one cleanup batch.
    fill_ours: Fill,
}

/// Requests per second, latencies and this process's CPU time per request of one
/// measurement.
struct Sample {
    per_second: f64,
    latencies: Vec<StdDuration>,
    cpu_micros: f64,
}

/// CPU time this process has used (user + system), from `/proc/self/stat`; zero elsewhere.
fn cpu_time() -> StdDuration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    StdDuration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn percentile(sorted: &[StdDuration], p: f64) -> StdDuration {
    if sorted.is_empty() {
        return StdDuration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

type Request = Arc<dyn Fn(usize, u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Runs `request(task, n)` from `tasks` tasks for `seconds`.
async fn measure(tasks: usize, seconds: f64, request: Request) -> Sample {
    let deadline = Instant::now() + StdDuration::from_secs_f64(seconds);
    let start = Instant::now();
    let cpu = cpu_time();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let request = request.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while Instant::now() < deadline {
                let began = Instant::now();
                request(task, n).await;
                latencies.push(began.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_micros = (cpu_time() - cpu).as_secs_f64() * 1e6 / latencies.len().max(1) as f64;
    latencies.sort();
    Sample {
        per_second: latencies.len() as f64 / elapsed,
        latencies,
        cpu_micros,
    }
}

struct Settings {
    seconds: f64,
    rounds: usize,
}

/// Alternates ours and the baseline `rounds` times and prints the ratio of the totals.
async fn compare(
    settings: &Settings,
    engine: &str,
    workload: &str,
    tasks: usize,
    ours: Request,
    baseline: Request,
) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..settings.rounds {
        // Alternate which side goes first, so drift hits both alike.
        if round % 2 == 0 {
            a.push(measure(tasks, settings.seconds, ours.clone()).await);
            b.push(measure(tasks, settings.seconds, baseline.clone()).await);
        } else {
            b.push(measure(tasks, settings.seconds, baseline.clone()).await);
            a.push(measure(tasks, settings.seconds, ours.clone()).await);
        }
    }
    let rate = |s: &[Sample]| s.iter().map(|s| s.per_second).sum::<f64>() / s.len() as f64;
    let p99 = |s: &[Sample]| {
        let mut all: Vec<_> = s.iter().flat_map(|s| s.latencies.iter().copied()).collect();
        all.sort();
        percentile(&all, 0.99)
    };
    let cpu = |s: &[Sample]| s.iter().map(|s| s.cpu_micros).sum::<f64>() / s.len() as f64;
    println!(
        "RESULT {engine:<8} {workload:<14} tasks={tasks:<2} ours={:>8.0}/s baseline={:>8.0}/s \
         ratio={:.2} p99 ours={:.2}ms baseline={:.2}ms client cpu ours={:.0}us baseline={:.0}us",
        rate(&a),
        rate(&b),
        rate(&a) / rate(&b),
        p99(&a).as_secs_f64() * 1e3,
        p99(&b).as_secs_f64() * 1e3,
        cpu(&a),
        cpu(&b),
    );
}

fn encode(entries: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(entries).expect("json")
}

/// One session per task on both sides, created before the clock starts.
async fn sessions(engine: &Engine, manager: &SessionManager) -> (Vec<SessionKey>, Vec<String>) {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..TASKS {
        let session = manager.session_from_cookie(None);
        session.update(five_key_entries()).await.expect("five keys");
        let outcome = manager.finish(&session, 200).await;
        assert!(outcome.set_cookie_header().is_some(), "created");
        ours.push(session.session_key().expect("saved"));
        let id = baseline_id();
        let data = encode(&five_key_entries());
        engine
            .baseline
            .insert(&id, &data, OffsetDateTime::now_utc() + TWO_WEEKS)
            .await;
        theirs.push(id);
    }
    (ours, theirs)
}

/// A tower-sessions id: a random 128-bit number in URL-safe base64, 22 characters.
fn baseline_id() -> String {
    SessionKey::generate().expose_secret()[..22].to_owned()
}

/// Our W1 request: load, increment, save through the session API.
fn our_increment(manager: SessionManager, keys: Arc<Vec<SessionKey>>) -> Request {
    Arc::new(move |task, _| {
        let manager = manager.clone();
        let keys = keys.clone();
        Box::pin(async move {
            let session = manager.session_from_cookie(Some(keys[task].expose_secret()));
            let n = session
                .get::<i64>("counter")
                .await
                .expect("get")
                .unwrap_or(0);
            session.insert("counter", n + 1).await.expect("insert");
            let outcome = manager.finish(&session, 200).await;
            assert!(outcome.set_cookie_header().is_some(), "saved");
        })
    })
}

/// The baseline's W1 request: load, decode, increment, encode, upsert.
fn baseline_increment(baseline: Arc<dyn Baseline>, ids: Arc<Vec<String>>) -> Request {
    Arc::new(move |task, _| {
        let baseline = baseline.clone();
        let ids = ids.clone();
        Box::pin(async move {
            let data = baseline.load(&ids[task]).await.expect("live");
            let mut entries: Map<String, Value> = serde_json::from_slice(&data).expect("json");
            let n = entries.get("counter").and_then(Value::as_i64).unwrap_or(0);
            entries.insert("counter".into(), Value::from(n + 1));
            let expiry = OffsetDateTime::now_utc() + TWO_WEEKS;
            baseline.save(&ids[task], &encode(&entries), expiry).await;
        })
    })
}

async fn w1(settings: &Settings, engine: &Engine) {
    let manager = SessionManager::from_shared(engine.store.clone(), Arc::new(SessionConfig::new()));
    let (keys, ids) = sessions(engine, &manager).await;
    let (keys, ids) = (Arc::new(keys), Arc::new(ids));
    for tasks in [1, TASKS] {
        compare(
            settings,
            engine.name,
            "W1 increment",
            tasks,
            our_increment(manager.clone(), keys.clone()),
            baseline_increment(engine.baseline.clone(), ids.clone()),
        )
        .await;
    }
}

async fn w2(settings: &Settings, engine: &Engine) {
    let manager = SessionManager::from_shared(engine.store.clone(), Arc::new(SessionConfig::new()));
    let ours: Request = Arc::new(move |_, _| {
        let manager = manager.clone();
        Box::pin(async move {
            let session = manager.session_from_cookie(None);
            session.insert("user_id", 123_456).await.expect("insert");
            let outcome = manager.finish(&session, 200).await;
            assert!(outcome.set_cookie_header().is_some(), "created");
        })
    });
    let baseline = engine.baseline.clone();
    let theirs: Request = Arc::new(move |_, _| {
        let baseline = baseline.clone();
        Box::pin(async move {
            let mut entries = Map::new();
            entries.insert("user_id".into(), Value::from(123_456));
            let expiry = OffsetDateTime::now_utc() + TWO_WEEKS;
            baseline
                .insert(&baseline_id(), &encode(&entries), expiry)
                .await;
        })
    });
    compare(settings, engine.name, "W2 create", TASKS, ours, theirs).await;
}

async fn w3(settings: &Settings, engine: &Engine) {
    for (label, threshold) in [("W3 9:1 off", None), ("W3 9:1 at 0.8", Some(0.8))] {
        let config = SessionConfig::new()
            .save_every_request(true)
            .touch_threshold(threshold);
        let manager = SessionManager::from_shared(engine.store.clone(), Arc::new(config));
        let (keys, ids) = sessions(engine, &manager).await;
        let (keys, ids) = (Arc::new(keys), Arc::new(ids));
        let ours: Request = Arc::new(move |task, n| {
            let manager = manager.clone();
            let keys = keys.clone();
            Box::pin(async move {
                let session = manager.session_from_cookie(Some(keys[task].expose_secret()));
                let count = session
                    .get::<i64>("counter")
                    .await
                    .expect("get")
                    .unwrap_or(0);
                if n % 10 == 9 {
                    session.insert("counter", count + 1).await.expect("insert");
                }
                let outcome = manager.finish(&session, 200).await;
                assert!(outcome.set_cookie_header().is_some(), "renewed");
            })
        });
        let baseline = engine.baseline.clone();
        let theirs: Request = Arc::new(move |task, n| {
            let baseline = baseline.clone();
            let ids = ids.clone();
            Box::pin(async move {
                let data = baseline.load(&ids[task]).await.expect("live");
                let mut entries: Map<String, Value> = serde_json::from_slice(&data).expect("json");
                if n % 10 == 9 {
                    let count = entries.get("counter").and_then(Value::as_i64).unwrap_or(0);
                    entries.insert("counter".into(), Value::from(count + 1));
                }
                let expiry = OffsetDateTime::now_utc() + TWO_WEEKS;
                baseline.save(&ids[task], &encode(&entries), expiry).await;
            })
        });
        compare(settings, engine.name, label, TASKS, ours, theirs).await;
    }
}

/// W6: fill both tables with a million rows, 10% expired, then clear them while W1 runs.
async fn w6(settings: &Settings, engine: &Engine) {
    const ROWS: u64 = 1_000_000;
    const EXPIRED: u64 = ROWS / 10;
    let began = Instant::now();
    let plan = (engine.fill_ours)(ROWS, EXPIRED).await;
    engine.baseline.fill(ROWS, EXPIRED).await;
    println!(
        "W6 {}: filled 2 x {ROWS} rows in {:.1}s; cleanup plan: {plan}",
        engine.name,
        began.elapsed().as_secs_f64()
    );
    let manager = SessionManager::from_shared(engine.store.clone(), Arc::new(SessionConfig::new()));
    let (keys, ids) = sessions(engine, &manager).await;
    let (keys, ids) = (Arc::new(keys), Arc::new(ids));
    for (side, request) in [
        ("ours", our_increment(manager.clone(), keys)),
        ("baseline", baseline_increment(engine.baseline.clone(), ids)),
    ] {
        let load = tokio::spawn(measure(TASKS, settings.seconds.max(1.0) * 4.0, request));
        tokio::time::sleep(StdDuration::from_millis(500)).await;
        let started = Instant::now();
        let cleared = if side == "ours" {
            engine.store.clear_expired().await.expect("clear")
        } else {
            engine.baseline.clear_expired().await
        };
        let took = started.elapsed();
        let sample = load.await.expect("load");
        println!(
            "RESULT {:<8} W6 cleanup {side:<8} cleared={cleared} in {:.2}s; W1 during it: \
             {:.0}/s p99={:.2}ms",
            engine.name,
            took.as_secs_f64(),
            sample.per_second,
            percentile(&sample.latencies, 0.99).as_secs_f64() * 1e3,
        );
    }
}

async fn postgres() -> Option<Engine> {
    let Ok(url) = std::env::var("SESSION_TEST_POSTGRES_URL") else {
        println!("SKIPPED postgres: SESSION_TEST_POSTGRES_URL is not set");
        return None;
    };
    let store = PostgresStore::connect(&url).await.expect("connect");
    let pool = store.pool().clone();
    let baseline_pool = if same_pool() {
        pool.clone()
    } else {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .expect("connect")
    };
    for sql in [
        "DROP TABLE IF EXISTS bench_ours",
        "DROP TABLE IF EXISTS bench_tower",
        "CREATE TABLE bench_tower (id TEXT PRIMARY KEY NOT NULL, data BYTEA NOT NULL, \
         expiry_date TIMESTAMPTZ NOT NULL)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("setup");
    }
    let store = store.with_table("bench_ours").expect("table");
    store.migrate().await.expect("migrate");
    let fill_pool = pool.clone();
    Some(Engine {
        name: "postgres",
        store: Arc::new(store),
        baseline: Arc::new(PgBaseline {
            pool: baseline_pool,
        }),
        fill_ours: Box::new(move |rows, expired| {
            let pool = fill_pool.clone();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO bench_ours (id, payload, expires_at, expires_hour) \
                     SELECT lpad(n::text, 64, '0'), $3, e, floor(extract(epoch FROM e) / 3600) \
                     FROM (SELECT n, CASE WHEN n <= $2 THEN now() - interval '1 hour' \
                     ELSE now() + interval '14 days' END AS e \
                     FROM generate_series(1, $1) AS n) AS rows",
                )
                .bind(rows as i64)
                .bind(expired as i64)
                .bind(session_testkit::fixtures::five_key_payload())
                .execute(&pool)
                .await
                .expect("fill");
                sqlx::query("ANALYZE bench_ours")
                    .execute(&pool)
                    .await
                    .expect("analyze");
                let plan: Vec<String> = sqlx::query_scalar(
                    "EXPLAIN DELETE FROM bench_ours WHERE id IN (SELECT id FROM bench_ours \
                     WHERE expires_hour <= floor(extract(epoch FROM now()) / 3600) \
                     AND expires_at <= now() ORDER BY expires_hour LIMIT 5000)",
                )
                .fetch_all(&pool)
                .await
                .expect("explain");
                plan.iter()
                    .filter(|line| line.contains("Scan"))
                    .map(|line| line.trim().to_owned())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
        }),
    })
}

async fn mysql() -> Option<Engine> {
    let Ok(url) = std::env::var("SESSION_TEST_MYSQL_URL") else {
        println!("SKIPPED mysql: SESSION_TEST_MYSQL_URL is not set");
        return None;
    };
    let store = MySqlStore::connect(&url).await.expect("connect");
    let pool = store.pool().clone();
    let baseline_pool = if same_pool() {
        pool.clone()
    } else {
        sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .expect("connect")
    };
    for sql in [
        "DROP TABLE IF EXISTS bench_ours",
        "DROP TABLE IF EXISTS bench_tower",
        "CREATE TABLE bench_tower (id VARCHAR(128) NOT NULL PRIMARY KEY, data BLOB NOT NULL, \
         expiry_date TIMESTAMP(6) NOT NULL)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("setup");
    }
    let store = store.with_table("bench_ours").expect("table");
    store.migrate().await.expect("migrate");
    let fill_pool = pool.clone();
    Some(Engine {
        name: "mysql",
        store: Arc::new(store),
        baseline: Arc::new(MySqlBaseline {
            pool: baseline_pool,
        }),
        fill_ours: Box::new(move |rows, expired| {
            let pool = fill_pool.clone();
            Box::pin(async move {
                sqlx::query(q(format!(
                    "INSERT INTO bench_ours (id, payload, expires_at, expires_hour) \
                     SELECT LPAD(seq, 64, '0'), ?, e, \
                     FLOOR(TIMESTAMPDIFF(SECOND, '1970-01-01', e) / 3600) \
                     FROM (SELECT seq, IF(seq <= ?, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR, \
                     UTC_TIMESTAMP(3) + INTERVAL 14 DAY) AS e FROM seq_1_to_{rows}) AS r"
                )))
                .bind(session_testkit::fixtures::five_key_payload())
                .bind(expired as i64)
                .execute(&pool)
                .await
                .expect("fill");
                let row = sqlx::query(
                    "EXPLAIN DELETE FROM bench_ours WHERE expires_hour <= \
                     FLOOR(TIMESTAMPDIFF(SECOND, '1970-01-01', UTC_TIMESTAMP()) / 3600) \
                     AND expires_at <= UTC_TIMESTAMP() ORDER BY expires_hour LIMIT 5000",
                )
                .fetch_one(&pool)
                .await
                .map(|row| {
                    use sqlx::Row;
                    let text = |name: &str| row.try_get::<Option<String>, _>(name).ok().flatten();
                    (text("type"), text("key"))
                })
                .expect("explain");
                format!("type={:?} key={:?}", row.0, row.1)
            })
        }),
    })
}

async fn sqlite(dir: &std::path::Path) -> Engine {
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    let pool = store.pool().clone();
    let baseline_pool = if same_pool() {
        pool.clone()
    } else {
        // The same file and connection settings as the store's own, in sqlx's default pool.
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("url");
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(
                options
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(StdDuration::from_secs(5)),
            )
            .await
            .expect("open")
    };
    sqlx::query(
        "CREATE TABLE bench_tower (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, \
         expiry_date INTEGER NOT NULL)",
    )
    .execute(&baseline_pool)
    .await
    .expect("setup");
    let store = store.with_table("bench_ours").expect("table");
    store.migrate().await.expect("migrate");
    let fill_pool = pool.clone();
    Engine {
        name: "sqlite",
        store: Arc::new(store),
        baseline: Arc::new(SqliteBaseline {
            pool: baseline_pool,
        }),
        fill_ours: Box::new(move |rows, expired| {
            let pool = fill_pool.clone();
            Box::pin(async move {
                let now = millis(OffsetDateTime::now_utc());
                sqlx::query(
                    "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq \
                     WHERE n < ?1), rows(n, e) AS (SELECT n, CASE WHEN n <= ?2 \
                     THEN ?4 - 3600000 ELSE ?4 + 1209600000 END FROM seq) \
                     INSERT INTO bench_ours (id, payload, expires_at, expires_hour) \
                     SELECT printf('%064d', n), ?3, e, e / 3600000 FROM rows",
                )
                .bind(rows as i64)
                .bind(expired as i64)
                .bind(session_testkit::fixtures::five_key_payload())
                .bind(now)
                .execute(&pool)
                .await
                .expect("fill");
                let rows = sqlx::query(
                    "EXPLAIN QUERY PLAN DELETE FROM bench_ours WHERE rowid IN \
                     (SELECT rowid FROM bench_ours WHERE expires_hour <= ?1 AND expires_at <= ?2 \
                     ORDER BY expires_hour LIMIT 5000)",
                )
                .bind(now / 3_600_000)
                .bind(now)
                .fetch_all(&pool)
                .await
                .expect("explain");
                let plan: Vec<String> = rows
                    .iter()
                    .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
                    .collect();
                plan.join(" | ")
            })
        }),
    }
}

/// `BENCH_SAME_POOL=1` runs the baseline on the store's own pool instead of one with sqlx's
/// defaults (what a tower-sessions user builds with `PgPool::connect`).
fn same_pool() -> bool {
    std::env::var("BENCH_SAME_POOL").is_ok_and(|v| v == "1")
}

fn listed(variable: &str, default: &str, item: &str) -> bool {
    std::env::var(variable)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .any(|listed| listed.trim() == item)
}

fn main() {
    // Cargo passes `--bench`; the harness takes no other arguments.
    let settings = Settings {
        seconds: std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
        rounds: std::env::var("BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    runtime.block_on(async {
        let mut engines = Vec::new();
        if listed("BENCH_ENGINES", "postgres,mysql,sqlite", "postgres") {
            engines.extend(postgres().await);
        }
        if listed("BENCH_ENGINES", "postgres,mysql,sqlite", "mysql") {
            engines.extend(mysql().await);
        }
        if listed("BENCH_ENGINES", "postgres,mysql,sqlite", "sqlite") {
            engines.push(sqlite(dir.path()).await);
        }
        for engine in &engines {
            let wants = |w: &str| listed("BENCH_WORKLOADS", "w1,w2,w3,w6", w);
            if wants("w1") {
                w1(&settings, engine).await;
            }
            if wants("w2") {
                w2(&settings, engine).await;
            }
            if wants("w3") {
                w3(&settings, engine).await;
            }
            if wants("w6") {
                w6(&settings, engine).await;
            }
        }
    });
}
