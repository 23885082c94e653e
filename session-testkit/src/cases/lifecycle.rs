//! Request-lifecycle cases: Django's `SessionMiddleware` rules through `SessionManager`, with
//! the store's I/O counted.

use std::future::Future;
use std::sync::Arc;

use session_core::cookie::SameSite;
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    Expiry, Outcome, Replacement, Session, SessionConfig, SessionKey, SessionManager, SessionStore,
};

use super::in_ms;
use crate::frontend::{Frontend, TestRequest};
use crate::{CaseContext, CountingStore, Counts, Faults};

/// A manager over the counted store.
struct Harness {
    manager: SessionManager,
    counting: Arc<CountingStore<Arc<dyn SessionStore>>>,
    frontend: Arc<dyn Frontend>,
}

impl Harness {
    fn new(ctx: &CaseContext, config: SessionConfig) -> Self {
        let (counting, counted) = ctx.counting();
        let manager = SessionManager::from_shared(counted.store().clone(), Arc::new(config));
        Self {
            manager,
            counting,
            frontend: ctx.frontend().clone(),
        }
    }

    /// One request: the cookie header (if any), the handler, the status it answers; served
    /// by the case's frontend (the manager itself, or a framework adapter).
    async fn request<F, Fut>(&self, cookie: Option<&SessionKey>, status: u16, handler: F) -> Outcome
    where
        F: FnOnce(Session) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let name = &self.manager.config().cookie_name;
        let header = cookie.map(|key| format!("{name}={}", key.expose_secret()));
        self.serve(
            header.map(String::into_bytes).into_iter().collect(),
            status,
            handler,
        )
        .await
    }

    /// One request with this raw `Cookie` header and a handler answering 200.
    async fn request_with_header<F, Fut>(&self, header: &str, handler: F) -> Outcome
    where
        F: FnOnce(Session) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.serve(vec![header.as_bytes().to_vec()], 200, handler)
            .await
    }

    async fn serve<F, Fut>(&self, cookie_headers: Vec<Vec<u8>>, status: u16, handler: F) -> Outcome
    where
        F: FnOnce(Session) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let request = TestRequest {
            cookie_headers,
            handler: Box::new(move |session| Box::pin(handler(session))),
            status,
        };
        self.frontend.serve(&self.manager, request).await
    }

    /// A session saved through the lifecycle with one entry; the counts are reset after.
    async fn existing(&self) -> SessionKey {
        let outcome = self
            .request(None, 200, |s| async move {
                s.insert("user_id", 42).await.expect("insert");
            })
            .await;
        self.counting.reset();
        cookie_key(&outcome)
    }

    fn counts(&self) -> Counts {
        self.counting.counts()
    }
}

fn cookie_key(outcome: &Outcome) -> SessionKey {
    let cookie = outcome.set_cookie.as_ref().expect("a session cookie");
    SessionKey::parse(cookie.value()).expect("the cookie holds a session key")
}

fn assert_removal(outcome: &Outcome, config: &SessionConfig) {
    let cookie = outcome.set_cookie.as_ref().expect("a removal cookie");
    assert!(outcome.removes_cookie(), "not a removal: {cookie}");
    assert_eq!(cookie.name(), config.cookie_name);
    assert_eq!(cookie.value(), "");
    assert_eq!(cookie.max_age(), Some(Duration::ZERO));
    assert_eq!(cookie.expires_datetime(), Some(OffsetDateTime::UNIX_EPOCH));
    assert_eq!(cookie.path(), Some(config.cookie_path.as_str()));
    assert_eq!(cookie.domain(), config.cookie_domain.as_deref());
    assert!(outcome.vary_cookie, "a removal varies on Cookie");
}

fn assert_near(at: OffsetDateTime, seconds: i64) {
    let gap = (at - (OffsetDateTime::now_utc() + Duration::seconds(seconds))).abs();
    assert!(
        gap < Duration::seconds(5),
        "{at} is {gap} away from now + {seconds}s"
    );
}

/// The cookie carries every attribute the configuration asks for.
pub async fn lifecycle_cookie_attributes_from_config(ctx: CaseContext) {
    let config = SessionConfig::new()
        .cookie_name("sid")
        .cookie_age(Duration::hours(1))
        .cookie_domain(Some("example.com".into()))
        .cookie_path("/app")
        .cookie_secure(true)
        .cookie_http_only(true)
        .cookie_same_site(Some(SameSite::Strict));
    let h = Harness::new(&ctx, config);
    let outcome = h
        .request(None, 200, |s| async move {
            s.insert("a", 1).await.expect("insert")
        })
        .await;
    let cookie = outcome.set_cookie.as_ref().expect("cookie");
    assert_eq!(cookie.name(), "sid");
    assert!(SessionKey::parse(cookie.value()).is_some());
    assert_eq!(cookie.domain(), Some("example.com"));
    assert_eq!(cookie.path(), Some("/app"));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Strict));
    assert_eq!(cookie.max_age(), Some(Duration::hours(1)));
    assert_near(cookie.expires_datetime().expect("Expires"), 3600);
    assert!(outcome.vary_cookie);
    assert_eq!(outcome.replace_with, None);
}

/// Django's defaults: `sessionid`, path `/`, HttpOnly, SameSite=Lax, two weeks, no Secure.
pub async fn lifecycle_default_cookie_attributes(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let outcome = h
        .request(None, 200, |s| async move {
            s.insert("a", 1).await.expect("insert")
        })
        .await;
    let cookie = outcome.set_cookie.as_ref().expect("cookie");
    assert_eq!(cookie.name(), "sessionid");
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert_eq!(cookie.secure(), None);
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.max_age(), Some(Duration::seconds(1_209_600)));
    let header = outcome.set_cookie_header().expect("header");
    assert!(header.starts_with("sessionid="), "{header}");
}

/// Browser-close expiry gives a cookie with neither `Max-Age` nor `Expires`.
pub async fn lifecycle_browser_close_has_no_max_age(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let outcome = h
        .request(None, 200, |s| async move {
            s.insert("a", 1).await.expect("insert");
            s.set_expiry(Expiry::BrowserClose)
                .await
                .expect("set_expiry");
        })
        .await;
    let cookie = outcome.set_cookie.as_ref().expect("cookie");
    assert_eq!(cookie.max_age(), None);
    assert_eq!(cookie.expires(), None);

    let config = SessionConfig::new().expire_at_browser_close(true);
    let h = Harness::new(&ctx, config);
    let outcome = h
        .request(None, 200, |s| async move {
            s.insert("a", 1).await.expect("insert")
        })
        .await;
    let cookie = outcome.set_cookie.as_ref().expect("cookie");
    assert_eq!(cookie.max_age(), None);
    assert_eq!(cookie.expires(), None);
}

/// On 500 and 503 nothing is written and no cookie is set.
pub async fn lifecycle_server_error_writes_nothing(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    for status in [500, 503] {
        let outcome = h
            .request(None, status, |s| async move {
                s.insert("a", 1).await.expect("insert")
            })
            .await;
        assert_eq!(outcome.set_cookie, None);
        assert_eq!(h.counts().writes(), 0);
    }
    let key = h.existing().await;
    let outcome = h
        .request(Some(&key), 500, |s| async move {
            s.insert("user_id", 7).await.expect("insert");
        })
        .await;
    assert_eq!(outcome.set_cookie, None);
    assert_eq!(h.counts().writes(), 0);
    let session = ctx.resume(&key);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(42));
}

/// `flush` with the cookie present removes it (configured domain and path) and varies on
/// Cookie, also when the handler fails with a 5xx.
pub async fn lifecycle_flush_removes_cookie(ctx: CaseContext) {
    let config = SessionConfig::new()
        .cookie_domain(Some("example.org".into()))
        .cookie_path("/shop");
    let h = Harness::new(&ctx, config.clone());
    for status in [200, 500] {
        let key = h.existing().await;
        let outcome = h
            .request(Some(&key), status, |s| async move {
                s.flush().await.expect("flush")
            })
            .await;
        assert_removal(&outcome, &config);
        assert!(
            ctx.store()
                .load(&ctx.id_of(&key))
                .await
                .expect("load")
                .is_none()
        );
    }
}

/// `flush` of a session that came without a cookie sets no cookie but varies on Cookie.
pub async fn lifecycle_flush_without_cookie(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let outcome = h
        .request(None, 200, |s| async move {
            s.insert("a", 1).await.expect("insert");
            s.flush().await.expect("flush");
        })
        .await;
    assert_eq!(outcome.set_cookie, None);
    assert!(outcome.vary_cookie);
    assert_eq!(h.counts().create, 0);
}

/// A session emptied by removing its last entry is updated empty, not deleted.
pub async fn lifecycle_emptied_session_saved_empty(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    let outcome = h
        .request(Some(&key), 200, |s| async move {
            s.remove("user_id").await.expect("remove");
        })
        .await;
    assert_eq!(h.counts().update, 1);
    assert_eq!(h.counts().delete, 0);
    assert_eq!(cookie_key(&outcome), key);
    assert!(ctx.resume(&key).is_empty().await.expect("is_empty"));
    assert!(
        ctx.store()
            .load(&ctx.id_of(&key))
            .await
            .expect("load")
            .is_some()
    );
}

/// A handler that never touches the session costs no store I/O and gets no cookie.
pub async fn lifecycle_untouched_session_no_io(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    for cookie in [None, Some(&key)] {
        let outcome = h.request(cookie, 200, |_| async {}).await;
        assert_eq!(outcome.set_cookie, None);
        assert!(!outcome.vary_cookie);
        assert_eq!(h.counts().total(), 0, "no I/O for an untouched session");
    }
}

/// A read-only request does exactly one `load` and varies on Cookie, with no cookie set.
pub async fn lifecycle_read_only_one_load(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    let outcome = h
        .request(Some(&key), 200, |s| async move {
            assert_eq!(s.get::<i64>("user_id").await.expect("get"), Some(42));
            assert!(s.contains_key("user_id").await.expect("contains"));
        })
        .await;
    assert_eq!(outcome.set_cookie, None);
    assert!(outcome.vary_cookie);
    assert_eq!(
        h.counts(),
        Counts {
            load: 1,
            ..Counts::default()
        }
    );
}

/// A changed session costs one load and one update, and keeps its key.
pub async fn lifecycle_changed_session_one_update(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    let outcome = h
        .request(Some(&key), 200, |s| async move {
            s.insert("username", "john_doe").await.expect("insert");
        })
        .await;
    assert_eq!(
        h.counts(),
        Counts {
            load: 1,
            update: 1,
            ..Counts::default()
        }
    );
    assert_eq!(cookie_key(&outcome), key);
}

/// A new session that holds no data is never created, even when accessed or given an expiry.
pub async fn lifecycle_new_empty_session_not_created(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let outcome = h
        .request(None, 200, |s| async move {
            assert_eq!(s.get::<i64>("user_id").await.expect("get"), None);
            s.set_expiry(Expiry::Inactivity(Duration::hours(1)))
                .await
                .expect("set_expiry");
        })
        .await;
    assert_eq!(outcome.set_cookie, None);
    assert_eq!(h.counts().total(), 0);
    let config = SessionConfig::new().save_every_request(true);
    let h = Harness::new(&ctx, config);
    let outcome = h.request(None, 200, |_| async {}).await;
    assert_eq!(outcome.set_cookie, None);
    assert_eq!(h.counts().total(), 0);
}

/// `save_every_request` renews the cookie (with `Vary: Cookie`) and writes with `touch`, not
/// `update`.
pub async fn lifecycle_save_every_request_touches(ctx: CaseContext) {
    let config = SessionConfig::new()
        .save_every_request(true)
        .cookie_age(Duration::hours(2));
    let h = Harness::new(&ctx, config);
    let key = h.existing().await;
    ctx.store()
        .touch(&ctx.id_of(&key), in_ms(60_000))
        .await
        .expect("age the record");
    let outcome = h.request(Some(&key), 200, |_| async {}).await;
    assert_eq!(
        h.counts(),
        Counts {
            load: 1,
            touch: 1,
            ..Counts::default()
        }
    );
    assert_eq!(cookie_key(&outcome), key);
    assert!(outcome.vary_cookie);
    let record = ctx
        .store()
        .load(&ctx.id_of(&key))
        .await
        .expect("load")
        .expect("live");
    assert_near(record.expires_at(), 7200);
    let session = ctx.resume(&key);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(42));
}

/// With a touch threshold, a fresh session is not touched; a stale one is.
pub async fn lifecycle_touch_threshold_skips_fresh(ctx: CaseContext) {
    let config = SessionConfig::new()
        .save_every_request(true)
        .cookie_age(Duration::hours(1))
        .touch_threshold(Some(0.8));
    let h = Harness::new(&ctx, config);
    let key = h.existing().await;
    let outcome = h.request(Some(&key), 200, |_| async {}).await;
    assert_eq!(
        h.counts(),
        Counts {
            load: 1,
            ..Counts::default()
        }
    );
    let cookie = outcome
        .set_cookie
        .as_ref()
        .expect("the cookie is still renewed");
    let age = cookie.max_age().expect("Max-Age").whole_seconds();
    assert!((3590..=3600).contains(&age), "Max-Age {age}");

    ctx.store()
        .touch(&ctx.id_of(&key), in_ms(600_000))
        .await
        .expect("age the record");
    h.counting.reset();
    let outcome = h.request(Some(&key), 200, |_| async {}).await;
    assert_eq!(
        h.counts().touch,
        1,
        "a session past the threshold is touched"
    );
    assert_eq!(
        outcome.set_cookie.and_then(|c| c.max_age()),
        Some(Duration::hours(1))
    );
}

/// Under `save_every_request`, a fixed-moment expiry is never touched.
pub async fn lifecycle_fixed_moment_not_touched(ctx: CaseContext) {
    let config = SessionConfig::new().save_every_request(true);
    let h = Harness::new(&ctx, config);
    let at = in_ms(3_600_000);
    let outcome = h
        .request(None, 200, move |s| async move {
            s.insert("a", 1).await.expect("insert");
            s.set_expiry(Expiry::At(at)).await.expect("set_expiry");
        })
        .await;
    let key = cookie_key(&outcome);
    h.counting.reset();
    let outcome = h.request(Some(&key), 200, |_| async {}).await;
    assert_eq!(
        h.counts(),
        Counts {
            load: 1,
            ..Counts::default()
        }
    );
    let age = outcome
        .set_cookie
        .expect("cookie")
        .max_age()
        .expect("Max-Age");
    assert!(
        (3590..=3600).contains(&age.whole_seconds()),
        "Max-Age {age}"
    );
}

/// Under `save_every_request`, a cookie whose record is gone is removed, and nothing is
/// created.
pub async fn lifecycle_stale_cookie_removed(ctx: CaseContext) {
    let config = SessionConfig::new().save_every_request(true);
    let h = Harness::new(&ctx, config.clone());
    let key = h.existing().await;
    assert!(ctx.store().delete(&ctx.id_of(&key)).await.expect("delete"));
    let outcome = h.request(Some(&key), 200, |_| async {}).await;
    assert_removal(&outcome, &config);
    assert_eq!(h.counts().create, 0);
    assert_eq!(h.counts().touch, 0);
}

/// An unknown (well-formed) key in the cookie is removed and causes no `create`.
pub async fn lifecycle_unknown_key_no_create(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let planted = SessionKey::generate();
    let outcome = h
        .request(Some(&planted), 200, |s| async move {
            assert_eq!(s.get::<i64>("user_id").await.expect("get"), None);
        })
        .await;
    assert_removal(&outcome, &SessionConfig::default());
    assert_eq!(
        h.counts(),
        Counts {
            load: 1,
            ..Counts::default()
        }
    );
    assert!(
        ctx.store()
            .load(&ctx.id_of(&planted))
            .await
            .expect("load")
            .is_none()
    );
}

/// A save after a concurrent logout answers 400 with a removal cookie, and the session stays
/// deleted.
pub async fn lifecycle_concurrent_logout_is_interrupted(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    let store = ctx.store().clone();
    let logout = ctx.clone();
    let outcome = h
        .request(Some(&key), 200, |s| async move {
            assert_eq!(s.get::<i64>("user_id").await.expect("get"), Some(42));
            // The logout in a concurrent request lands while this handler runs.
            assert!(
                store
                    .delete(&logout.id_of(&s.session_key().expect("key")))
                    .await
                    .expect("delete")
            );
            s.insert("cart", "full").await.expect("insert");
        })
        .await;
    assert_eq!(outcome.replace_with, Some(Replacement::Interrupted));
    assert_eq!(Replacement::Interrupted.status(), 400);
    assert_removal(&outcome, &SessionConfig::default());
    assert!(
        ctx.store()
            .load(&ctx.id_of(&key))
            .await
            .expect("load")
            .is_none()
    );
}

/// A store that fails on write gives the 503 outcome, with no cookie.
pub async fn lifecycle_store_failure_is_503(ctx: CaseContext) {
    let (faulty, ctx) = ctx.faulty();
    let manager = SessionManager::from_shared(ctx.store().clone(), Arc::default());
    faulty.set_faults(Faults::Writes);
    let session = manager.session_from_headers(None::<&str>);
    session.insert("a", 1).await.expect("insert");
    let outcome = manager.finish(&session, 200).await;
    assert_eq!(outcome.replace_with, Some(Replacement::StoreUnavailable));
    assert_eq!(Replacement::StoreUnavailable.status(), 503);
    assert_eq!(outcome.set_cookie, None);
}

/// `cycle_key` at login sends the new key and the old record is gone.
pub async fn lifecycle_cycle_key_sends_new_key(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    let outcome = h
        .request(Some(&key), 200, |s| async move {
            s.cycle_key().await.expect("cycle_key");
            s.insert("username", "john_doe").await.expect("insert");
        })
        .await;
    let new = cookie_key(&outcome);
    assert_ne!(new, key);
    assert!(
        ctx.store()
            .load(&ctx.id_of(&key))
            .await
            .expect("load")
            .is_none()
    );
    let session = ctx.resume(&new);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(42));
    assert_eq!(h.counts().create, 1);
    assert_eq!(h.counts().delete, 1);
    assert_eq!(h.counts().update, 0);
}

/// A handler's explicit `save` is not repeated, and the cookie is sent.
pub async fn lifecycle_explicit_save_sends_cookie(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let outcome = h
        .request(None, 200, |s| async move {
            s.insert("a", 1).await.expect("insert");
            s.save().await.expect("save");
        })
        .await;
    assert!(outcome.set_cookie.is_some());
    assert_eq!(h.counts().writes(), 1);
}

/// Every `Cookie` header is read (HTTP/2 splits them), other cookies are ignored, and a
/// malformed session cookie counts as present (so it is removed).
pub async fn lifecycle_reads_every_cookie_header(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    let second = format!("sessionid={}; lang=en", key.expose_secret());
    let session = h
        .manager
        .session_from_headers(["theme=dark; csrftoken=abc", second.as_str()]);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(42));

    let bad = "x".repeat(8 * 1024);
    for header in [
        format!("sessionid={bad}"),
        "sessionid=../../etc".into(),
        "sessionid=".into(),
    ] {
        let session = h.manager.session_from_headers([header.as_str()]);
        assert!(session.inspect().had_cookie);
        assert!(session.session_key().is_none());
        let outcome = h.manager.finish(&session, 200).await;
        assert!(outcome.removes_cookie(), "{header:.40}");
    }
    let other = h.manager.session_from_headers(["garbage;;; =; a"]);
    assert!(!other.inspect().had_cookie);
}

/// Other cookies may hold any bytes: a non-ASCII or non-UTF-8 value in the same `Cookie`
/// header (or another one) never hides the session cookie.
pub async fn lifecycle_non_ascii_cookie_header_keeps_session(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let key = h.existing().await;
    let session_cookie = format!("sessionid={}", key.expose_secret());
    let utf8 = format!("pref=café; {session_cookie}; name=Zoë");
    let mut not_utf8 = b"raw=\xff\xfe\x80; ".to_vec();
    not_utf8.extend_from_slice(session_cookie.as_bytes());
    let headers: [&[u8]; 2] = [utf8.as_bytes(), &not_utf8];
    for header in headers {
        let session = h.manager.session_from_headers([header]);
        assert_eq!(
            session.get::<i64>("user_id").await.expect("get"),
            Some(42),
            "the session was lost behind {:?}",
            String::from_utf8_lossy(header)
        );
        let outcome = h.manager.finish(&session, 200).await;
        assert_eq!(outcome.set_cookie, None, "no new key, no removal");
    }
    // Split over two headers, the non-ASCII one first.
    let session = h
        .manager
        .session_from_headers([&b"pref=caf\xc3\xa9"[..], session_cookie.as_bytes()]);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(42));
}

/// A session cookie that does not load (unknown, expired, malformed) never shadows one that
/// does, in either order: the first live candidate wins and no cookie is removed. Django
/// lets the last value win; trying candidates means a cookie planted for a parent domain
/// cannot log a user out.
pub async fn lifecycle_unknown_key_never_shadows_live_one(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let live = h.existing().await;
    let unknown = SessionKey::generate();
    let live = format!("sessionid={}", live.expose_secret());
    let unknown = format!("sessionid={}", unknown.expose_secret());
    let orders = [
        format!("{unknown}; {live}"),
        format!("{live}; {unknown}"),
        format!("sessionid=../etc; {unknown}; {live}"),
    ];
    for header in orders {
        h.counting.reset();
        let session = h.manager.session_from_headers([header.as_str()]);
        assert_eq!(
            session.get::<i64>("user_id").await.expect("get"),
            Some(42),
            "the live session was shadowed in {header:.60}"
        );
        let outcome = h.manager.finish(&session, 200).await;
        assert_eq!(outcome.set_cookie, None, "nothing to set or remove");
        assert!(h.counts().load <= 2, "{:?}", h.counts());
        assert_eq!(h.counts().writes(), 0);
    }
    // A change saves under the key that loaded, never under the unknown one.
    let header = format!("{unknown}; {live}");
    let outcome = h
        .request_with_header(&header, |s| async move {
            s.insert("cart", "full").await.expect("insert");
        })
        .await;
    assert_eq!(
        outcome.set_cookie.as_ref().map(|c| c.value().to_owned()),
        Some(live.trim_start_matches("sessionid=").to_owned())
    );
    assert_eq!(h.counts().create, 0, "no new record");
}

/// At most three candidate cookies are looked up; when none loads, the removal cookie goes
/// out and nothing is created.
pub async fn lifecycle_session_cookie_lookups_are_bounded(ctx: CaseContext) {
    let h = Harness::new(&ctx, SessionConfig::default());
    let live = h.existing().await;
    let mut header: Vec<String> = (0..5)
        .map(|_| format!("sessionid={}", SessionKey::generate().expose_secret()))
        .collect();
    header.push(format!("sessionid={}", live.expose_secret()));
    let header = header.join("; ");
    let outcome = h
        .request_with_header(&header, |s| async move {
            assert_eq!(s.get::<i64>("user_id").await.expect("get"), None);
        })
        .await;
    assert_eq!(
        h.counts(),
        Counts {
            load: session_core::MAX_CANDIDATES as u64,
            ..Counts::default()
        },
        "one load per candidate, at most {}",
        session_core::MAX_CANDIDATES
    );
    assert_removal(&outcome, &SessionConfig::default());
}

/// A session over `max_payload_bytes` is not saved: the lifecycle answers 500 (the error is
/// logged), sets no cookie, and the stored record keeps its earlier data.
pub async fn lifecycle_oversized_session_is_500_and_keeps_record(ctx: CaseContext) {
    let config = SessionConfig::new().max_payload_bytes(Some(4096));
    let h = Harness::new(&ctx, config);
    let key = h.existing().await;
    let outcome = h
        .request(Some(&key), 200, |s| async move {
            // Incompressible, so it is too large for codecs that compress too.
            s.insert("blob", crate::fixtures::incompressible(5000))
                .await
                .expect("insert");
        })
        .await;
    assert_eq!(outcome.replace_with, Some(Replacement::ServerError));
    assert_eq!(Replacement::ServerError.status(), 500);
    assert_eq!(outcome.set_cookie, None);
    assert_eq!(h.counts().writes(), 0);
    let session = ctx.resume(&key);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(42));
    assert_eq!(session.get::<String>("blob").await.expect("get"), None);
}
