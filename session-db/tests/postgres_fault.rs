//! `PostgresStore` against a PostgreSQL cluster this test starts, kills and starts again: with
//! the server down every operation, and `connect`, fails within the store's bound with an
//! error naming the server (never the password); once it is back, the same store works.

mod common;

use std::time::{Duration, Instant};

use common::fault::{self, checked_text, every_operation_fails_within, store_works_again};
use common::own_server::OwnPostgres;
use session_core::{SessionStore, error_chain};
use session_db::{PostgresStore, StoreOptions};

/// The bound the test sets; the checks allow three times it.
const BOUND: Duration = Duration::from_secs(1);

#[test]
fn postgres_server_down_fails_within_bound_then_recovers() {
    let Some(mut server) = OwnPostgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let url = server.url();
            let port = server.port();
            let options = StoreOptions::new()
                .connect_timeout(BOUND)
                .acquire_timeout(BOUND);
            let store = PostgresStore::connect_with(&url, options)
                .await
                .expect("connect");
            store.migrate().await.expect("migrate");
            let known = fault::record();
            store.create(&known).await.expect("create");
            assert_eq!(
                store.load(known.id()).await.expect("load"),
                Some(known.clone())
            );
            // A pool that hands out its idle connection unchecked: the dead connection fails
            // at once, it does not hang, and the error reads once.
            let unchecked = options
                .pool_options::<sqlx::Postgres>()
                .test_before_acquire(false)
                .max_connections(1)
                .connect(&url)
                .await
                .expect("a second pool");
            let unchecked = PostgresStore::new(unchecked);
            unchecked
                .load(known.id())
                .await
                .expect("load on the second pool");

            server.stop();
            every_operation_fails_within(&store, &known, BOUND, port).await;
            let (outcome, took) = fault::timed(unchecked.load(known.id())).await;
            let error = outcome.expect_err("a dead pooled connection");
            let text = checked_text(&error, port);
            eprintln!(
                "server down: load on a dead pooled connection failed after {took:?}: {text}"
            );
            assert!(took < BOUND * 3, "took {took:?}");

            let started = Instant::now();
            let error = PostgresStore::connect_with(&url, options)
                .await
                .expect_err("connect to a stopped server");
            let took = started.elapsed();
            eprintln!(
                "server down: connect failed after {took:?}: {}",
                error_chain(&error)
            );
            checked_text(&error, port);
            assert!(took < BOUND * 3, "connect took {took:?}");

            server.start_again();
            store_works_again(&store, &known).await;
        })
        .await
        .expect("the whole test within 60 s");
    });
}
