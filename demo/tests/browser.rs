//! The demo in a real browser: headless Chromium driven over WebDriver (chromedriver). Log in
//! through the form (its hidden CSRF token makes the POST pass) and see the name; logging in
//! as another user starts a fresh session; with browser-close expiry, a clean quit and
//! restart on the same profile logs out; with one-hour expiry it does not; opening
//! `/logout` does not log out, its POST button does and removes the cookie.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`ci/browser.sh` installs them). Without
//! them the test is skipped loudly, or fails under `SESSION_TEST_REQUIRE=1`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use session_core::{MemoryStore, SessionConfig, SessionManager};
use session_testkit::services;
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The first of `names` on the `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The browser and chromedriver: `CHROMIUM_BIN` and `CHROMEDRIVER_BIN` if set, else Debian's
/// paths, else the `PATH` (Chromium or Chrome).
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let chromium = from_env("CHROMIUM_BIN")
        .or_else(|| Some(PathBuf::from("/usr/lib/chromium/chromium")).filter(|p| p.is_file()))
        .or_else(|| on_path(&["chromium", "chromium-browser", "google-chrome"]))?;
    let driver = from_env("CHROMEDRIVER_BIN").or_else(|| on_path(&["chromedriver"]))?;
    Some((chromium, driver))
}

/// Serves the demo (memory engine) on a free port; returns its base URL.
async fn serve_demo(manager: SessionManager) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        axum::serve(listener, demo::app(manager))
            .await
            .expect("serve");
    });
    base
}

async fn start_driver(driver: &Path, port: u16) -> Child {
    Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver")
}

/// A browser session on the given profile directory; retried while chromedriver starts.
async fn open_browser(driver_url: &str, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--password-store=basic",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities.clone());
        match builder.connect(driver_url).await {
            Ok(client) => return client,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("no browser session: {error}"),
        }
    }
}

/// Waits (up to 10 s) until the element `id` shows `expected`; a click's navigation may
/// still be under way, so stale or missing elements are retried.
async fn wait_text(client: &Client, id: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = client.find(Locator::Id(id)).await
            && let Ok(text) = element.text().await
        {
            if text == expected {
                return;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("#{id} shows {last:?}, not {expected:?}");
}

async fn log_in(client: &Client, base: &str, name: &str) {
    log_in_as(client, base, "123", name).await;
}

/// Fills in the home page's login form and submits it: a real form POST, CSRF token and all.
async fn log_in_as(client: &Client, base: &str, user_id: &str, name: &str) {
    client.goto(&format!("{base}/")).await.expect("home");
    for (id, value) in [("user_id_input", user_id), ("username_input", name)] {
        let field = client.find(Locator::Id(id)).await.expect("field");
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }
    client
        .find(Locator::Id("login"))
        .await
        .expect("button")
        .click()
        .await
        .expect("log in");
    wait_text(client, "user", name).await;
}

async fn session_cookie(client: &Client) -> Option<fantoccini::cookies::Cookie<'static>> {
    let cookies = client.get_all_cookies().await.expect("cookies");
    cookies.into_iter().find(|c| c.name() == "sessionid")
}

/// Quits the browser cleanly through WebDriver (a killed Chromium would restore session
/// cookies), then starts it again on the same profile.
async fn restart(client: Client, driver_url: &str, chromium: &Path, profile: &Path) -> Client {
    client.close().await.expect("quit the browser cleanly");
    // Chromium finishes writing its profile as it exits.
    tokio::time::sleep(Duration::from_secs(1)).await;
    open_browser(driver_url, chromium, profile).await
}

/// The demo served, and chromedriver running, for a browser test.
struct Launched {
    base: String,
    driver_url: String,
    chromium: PathBuf,
    _driver: Child,
}

/// Serves the demo over `manager` and starts chromedriver; `None` (skipped loudly, counted in
/// ci/test.sh's summary, a failure under SESSION_TEST_REQUIRE=1) without Chromium.
async fn launch(manager: SessionManager) -> Option<Launched> {
    let Some((chromium, driver)) = binaries() else {
        services::skip(
            "browser",
            "chromium and chromium-driver are not installed (run ci/browser.sh)",
        );
        return None;
    };
    let base = serve_demo(manager).await;
    let port = free_port();
    let driver_process = start_driver(&driver, port).await;
    Some(Launched {
        base,
        driver_url: format!("http://127.0.0.1:{port}"),
        chromium,
        _driver: driver_process,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_chromium_login_expiry_and_logout() {
    let manager = SessionManager::from_shared(
        Arc::new(MemoryStore::new()),
        Arc::new(SessionConfig::default()),
    );
    login_expiry_and_logout(manager).await;
}

/// The same walk with the whole session in a signed cookie (Django's `signed_cookies`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_chromium_signed_cookie_login_expiry_and_logout() {
    let config = SessionConfig::default();
    let sealer = session_django::SignedCookies::new(
        session_django::signing::Keys::new("a browser test secret"),
        config.cookie_age,
    );
    login_expiry_and_logout(SessionManager::client_side(sealer, config)).await;
}

async fn login_expiry_and_logout(manager: SessionManager) {
    let Some(Launched {
        base,
        driver_url,
        chromium,
        _driver,
    }) = launch(manager).await
    else {
        return;
    };
    let profile = tempfile::tempdir().expect("profile dir");

    // Log in and see the name.
    let client = open_browser(&driver_url, &chromium, profile.path()).await;
    log_in(&client, &base, "ann").await;
    let ann = session_cookie(&client).await.expect("a session cookie");

    // Another user in the same browser starts afresh: new key, the visit counter restarts.
    client.goto(&format!("{base}/")).await.expect("home");
    wait_text(&client, "visits", "2").await;
    log_in_as(&client, &base, "456", "carol").await;
    let carol = session_cookie(&client).await.expect("a session cookie");
    assert_ne!(ann.value(), carol.value(), "the key changes");
    client.goto(&format!("{base}/")).await.expect("home");
    wait_text(&client, "visits", "1").await;

    // Browser-close expiry: a session cookie, gone after a clean restart.
    client
        .find(Locator::Id("expiry-browser"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_text(&client, "expiry-kind", "when the browser closes").await;
    let cookie = session_cookie(&client).await.expect("a session cookie");
    assert!(
        cookie.expires().is_none(),
        "a browser-close cookie has no expiry"
    );
    let client = restart(client, &driver_url, &chromium, profile.path()).await;
    client
        .goto(&format!("{base}/profile"))
        .await
        .expect("profile");
    wait_text(&client, "user", "Not logged in.").await;

    // One-hour expiry: the cookie survives a clean restart.
    log_in(&client, &base, "bob").await;
    client
        .find(Locator::Id("expiry-hour"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_text(&client, "expiry-age", "3600").await;
    let client = restart(client, &driver_url, &chromium, profile.path()).await;
    client
        .goto(&format!("{base}/profile"))
        .await
        .expect("profile");
    wait_text(&client, "user", "bob").await;

    // Opening /logout does not log out; its button (a POST) does, and the cookie is gone.
    client
        .goto(&format!("{base}/logout"))
        .await
        .expect("logout page");
    client
        .find(Locator::Id("logout"))
        .await
        .expect("a logout button");
    client
        .goto(&format!("{base}/profile"))
        .await
        .expect("profile");
    wait_text(&client, "user", "bob").await;
    client
        .goto(&format!("{base}/logout"))
        .await
        .expect("logout page");
    client
        .find(Locator::Id("logout"))
        .await
        .expect("button")
        .click()
        .await
        .expect("log out");
    wait_text(&client, "user", "Not logged in.").await;
    assert!(
        session_cookie(&client).await.is_none(),
        "logout removed the cookie"
    );
    client.close().await.expect("quit");
}

/// "Sign out everywhere else" in two real browsers (two profiles) logged in as one user, on
/// the memory engine and on SQLite: the first sees both sessions, signs out the other, and
/// the second is logged out on its next request while the first stays logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_chromium_owner_sign_out_everywhere_else_memory() {
    let config = SessionConfig::default().record_client(true);
    let manager = SessionManager::from_shared(Arc::new(MemoryStore::new()), Arc::new(config));
    sign_out_everywhere_else(manager).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_chromium_owner_sign_out_everywhere_else_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
    let store = session_db::SqliteStore::connect(&url)
        .await
        .expect("sqlite");
    store.migrate().await.expect("migrate");
    let config = SessionConfig::default().record_client(true);
    sign_out_everywhere_else(SessionManager::new(store, config)).await;
}

async fn sign_out_everywhere_else(manager: SessionManager) {
    let Some(Launched {
        base,
        driver_url,
        chromium,
        _driver,
    }) = launch(manager).await
    else {
        return;
    };
    let (first, second) = (
        tempfile::tempdir().expect("profile dir"),
        tempfile::tempdir().expect("profile dir"),
    );
    let a = open_browser(&driver_url, &chromium, first.path()).await;
    let b = open_browser(&driver_url, &chromium, second.path()).await;
    log_in(&a, &base, "ann").await;
    log_in(&b, &base, "ann").await;

    a.goto(&format!("{base}/sessions")).await.expect("sessions");
    wait_text(&a, "session-count", "2").await;
    let current = a
        .find(Locator::Css("li.current"))
        .await
        .expect("this browser is marked")
        .text()
        .await
        .expect("text");
    assert!(
        current.contains("HeadlessChrome"),
        "the browser is named: {current}"
    );
    a.find(Locator::Id("end-others"))
        .await
        .expect("button")
        .click()
        .await
        .expect("sign out everywhere else");
    wait_text(&a, "session-count", "1").await;

    b.goto(&format!("{base}/profile")).await.expect("profile");
    wait_text(&b, "user", "Not logged in.").await;
    assert!(
        session_cookie(&b).await.is_none(),
        "the other browser's cookie was removed"
    );
    a.goto(&format!("{base}/profile")).await.expect("profile");
    wait_text(&a, "user", "ann").await;
    a.close().await.expect("quit");
    b.close().await.expect("quit");
}
