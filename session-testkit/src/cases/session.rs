//! Session-level cases: Django's `SessionBase` behaviour, run on every store.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use session_core::time::{Duration, OffsetDateTime};
use session_core::{
    Expiry, Record, Session, SessionConfig, SessionError, SessionKey, TEST_COOKIE_NAME,
};

use super::in_ms;
use crate::{CaseContext, Faults};

/// Two weeks, Django's `SESSION_COOKIE_AGE`.
const DEFAULT_AGE: i64 = 1_209_600;

/// Saves `entries` in a new session and returns its key.
async fn saved_session(ctx: &CaseContext, entries: &[(&str, Value)]) -> SessionKey {
    let session = ctx.session();
    for (name, value) in entries {
        session.insert(name, value).await.expect("insert");
    }
    session.save().await.expect("save");
    session.session_key().expect("a saved session has a key")
}

/// Asserts `at` lies within two seconds of now plus `seconds`.
fn assert_near(at: OffsetDateTime, seconds: i64) {
    let expected = OffsetDateTime::now_utc() + Duration::seconds(seconds);
    let gap = (at - expected).abs();
    assert!(
        gap < Duration::seconds(5),
        "{at} is {gap} away from now + {seconds}s"
    );
}

/// Whether the store holds a live record for `key`.
async fn is_stored(ctx: &CaseContext, key: &SessionKey) -> bool {
    ctx.store()
        .load(&ctx.id_of(key))
        .await
        .expect("load")
        .is_some()
}

/// A new session is neither accessed nor modified, has no key and is void.
pub async fn session_new_flags(ctx: CaseContext) {
    let session = ctx.session();
    assert!(!session.is_accessed());
    assert!(!session.is_modified());
    assert!(session.session_key().is_none());
    assert!(session.inspect().void);
    assert!(!session.inspect().saved);
}

/// `get` on an empty session is `None`, marks it accessed but not modified.
pub async fn session_get_on_empty(ctx: CaseContext) {
    let session = ctx.session();
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), None);
    assert!(session.is_accessed());
    assert!(!session.is_modified());
    assert!(session.inspect().void);
}

/// Nothing touches the store until the first data access; then exactly one load.
pub async fn session_loads_lazily(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(7))]).await;
    let (counting, ctx) = ctx.counting();
    let session = ctx.resume(&key);
    assert_eq!(session.session_key().as_ref(), Some(&key));
    assert!(!session.is_modified() && !session.is_accessed());
    assert_eq!(
        counting.counts().total(),
        0,
        "no I/O before the first access"
    );
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(7));
    assert_eq!(
        session.get::<i64>("user_id").await.expect("get again"),
        Some(7)
    );
    assert_eq!(session.len().await.expect("len"), 1);
    assert_eq!(counting.counts().load, 1);
    assert_eq!(counting.counts().total(), 1);
}

/// `insert` marks the session accessed and modified; the value reads back.
pub async fn session_insert_sets_flags(ctx: CaseContext) {
    let session = ctx.session();
    session.insert("user_id", 123).await.expect("insert");
    assert!(session.is_accessed());
    assert!(session.is_modified());
    assert!(!session.inspect().void);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(123));
}

/// Writing a value equal to the stored one does not mark the session modified.
pub async fn session_insert_equal_value_not_modified(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("username", json!("john_doe"))]).await;
    let session = ctx.resume(&key);
    session
        .insert("username", "john_doe")
        .await
        .expect("insert");
    assert!(session.is_accessed());
    assert!(!session.is_modified());
    session
        .update([("username", "john_doe")])
        .await
        .expect("update");
    assert!(!session.is_modified());
    session.insert("username", "jane").await.expect("insert");
    assert!(session.is_modified());
}

/// A stored value that does not deserialize into the asked type is an error, not a panic.
pub async fn session_get_wrong_type_is_error(ctx: CaseContext) {
    let session = ctx.session();
    session
        .insert("user_id", "not a number")
        .await
        .expect("insert");
    let outcome = session.get::<u64>("user_id").await;
    assert!(
        matches!(&outcome, Err(SessionError::Deserialize { key, .. }) if key == "user_id"),
        "got {outcome:?}"
    );
    assert_eq!(
        session
            .get::<String>("user_id")
            .await
            .expect("get")
            .as_deref(),
        Some("not a number")
    );
}

/// Structured values survive a save and a reload.
pub async fn session_typed_values_roundtrip(ctx: CaseContext) {
    let cart: BTreeMap<String, Vec<u32>> =
        BTreeMap::from([("apples".into(), vec![1, 2, 3]), ("pears".into(), vec![])]);
    let session = ctx.session();
    session.insert("cart", &cart).await.expect("insert");
    session.insert("ratio", 0.25).await.expect("insert");
    session.insert("flag", true).await.expect("insert");
    session.insert("nothing", ()).await.expect("insert");
    session
        .insert("name", "Zoë 東京 \u{0}")
        .await
        .expect("insert");
    session.save().await.expect("save");
    let key = session.session_key().expect("key");
    let next = ctx.resume(&key);
    assert_eq!(next.get("cart").await.expect("cart"), Some(cart));
    assert_eq!(next.get::<f64>("ratio").await.expect("ratio"), Some(0.25));
    assert_eq!(next.get::<bool>("flag").await.expect("flag"), Some(true));
    assert_eq!(
        next.get_value("nothing").await.expect("nothing"),
        Some(Value::Null)
    );
    assert_eq!(
        next.get::<String>("name").await.expect("name").as_deref(),
        Some("Zoë 東京 \u{0}")
    );
}

/// `remove` of a present entry marks modified; of a missing one, it does not.
pub async fn session_remove_flags(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("a", json!(1))]).await;
    let session = ctx.resume(&key);
    assert_eq!(session.remove("missing").await.expect("remove"), None);
    assert!(session.is_accessed() && !session.is_modified());
    assert_eq!(session.remove("a").await.expect("remove"), Some(json!(1)));
    assert!(session.is_modified());
    assert!(!session.contains_key("a").await.expect("contains"));
}

/// `pop` returns the value, removes it and marks modified.
pub async fn session_pop_flags(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("a", json!("x"))]).await;
    let session = ctx.resume(&key);
    assert_eq!(
        session.pop::<String>("a").await.expect("pop").as_deref(),
        Some("x")
    );
    assert!(session.is_accessed() && session.is_modified());
    assert_eq!(session.get::<String>("a").await.expect("get"), None);
}

/// `pop` of a missing key (falling back to a default) does not mark the session modified.
pub async fn session_pop_missing_not_modified(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("a", json!(1))]).await;
    let session = ctx.resume(&key);
    let value = session
        .pop::<i64>("missing")
        .await
        .expect("pop")
        .unwrap_or(42);
    assert_eq!(value, 42);
    assert!(session.is_accessed());
    assert!(!session.is_modified());
}

/// `pop` into the wrong type is an error and the value stays.
pub async fn session_pop_wrong_type_keeps_value(ctx: CaseContext) {
    let session = ctx.session();
    session.insert("a", "text").await.expect("insert");
    assert!(session.pop::<i64>("a").await.is_err());
    assert_eq!(
        session.get::<String>("a").await.expect("get").as_deref(),
        Some("text")
    );
}

/// `set_default` inserts only when absent; only an insertion marks modified.
pub async fn session_set_default(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("present", json!(1))]).await;
    let session = ctx.resume(&key);
    assert_eq!(
        session
            .set_default("present", 5)
            .await
            .expect("set_default"),
        1
    );
    assert!(session.is_accessed() && !session.is_modified());
    assert_eq!(
        session.set_default("absent", 5).await.expect("set_default"),
        5
    );
    assert!(session.is_modified());
    assert_eq!(session.get::<i64>("absent").await.expect("get"), Some(5));
}

/// `update` sets several entries and marks modified.
pub async fn session_update_many(ctx: CaseContext) {
    let session = ctx.session();
    session
        .update([("user_id", json!(123)), ("username", json!("john_doe"))])
        .await
        .expect("update");
    assert!(session.is_modified());
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(123));
    assert_eq!(
        session
            .get::<String>("username")
            .await
            .expect("get")
            .as_deref(),
        Some("john_doe")
    );
}

/// `contains_key`, `keys`, `values`, `entries`, `len` and `is_empty` read without modifying.
pub async fn session_inspection(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("a", json!(1)), ("b", json!("two"))]).await;
    let session = ctx.resume(&key);
    assert!(session.contains_key("a").await.expect("contains"));
    assert!(!session.contains_key("c").await.expect("contains"));
    let mut keys = session.keys().await.expect("keys");
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    let values = session.values().await.expect("values");
    assert_eq!(values.len(), 2);
    assert!(values.contains(&json!(1)) && values.contains(&json!("two")));
    let mut entries = session.entries().await.expect("entries");
    entries.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        entries,
        [("a".into(), json!(1)), ("b".into(), json!("two"))]
    );
    assert_eq!(session.len().await.expect("len"), 2);
    assert!(!session.is_empty().await.expect("is_empty"));
    assert!(session.is_accessed());
    assert!(!session.is_modified());
}

/// `clear` empties the session and marks modified; clearing an empty one changes nothing.
pub async fn session_clear_flags(ctx: CaseContext) {
    let session = ctx.session();
    session.clear().await.expect("clear");
    assert!(session.is_accessed() && !session.is_modified());
    let key = saved_session(&ctx, &[("a", json!(1)), ("b", json!(2))]).await;
    let session = ctx.resume(&key);
    session.clear().await.expect("clear");
    assert!(session.is_modified());
    assert!(session.is_empty().await.expect("is_empty"));
    assert_eq!(
        session.session_key().as_ref(),
        Some(&key),
        "clear keeps the key"
    );
}

/// A new session's `save` creates its record under a fresh key.
pub async fn session_save_new_persists(ctx: CaseContext) {
    let session = ctx.session();
    session.insert("user_id", 123).await.expect("insert");
    session.save().await.expect("save");
    let key = session.session_key().expect("key");
    assert!(session.inspect().saved);
    assert!(!session.is_modified(), "a save clears the modified flag");
    assert!(is_stored(&ctx, &key).await);
}

/// Saving a new, empty session creates its record, as in Django.
pub async fn session_save_new_empty_creates_record(ctx: CaseContext) {
    let session = ctx.session();
    session.save().await.expect("save");
    let key = session.session_key().expect("key");
    assert!(is_stored(&ctx, &key).await);
    assert!(ctx.resume(&key).is_empty().await.expect("is_empty"));
}

/// `save` keeps the in-memory data.
pub async fn session_save_keeps_in_memory_data(ctx: CaseContext) {
    let session = ctx.session();
    session.insert("a", 1).await.expect("insert");
    session.save().await.expect("save");
    assert_eq!(session.get::<i64>("a").await.expect("get"), Some(1));
    session.insert("b", 2).await.expect("insert");
    session.save().await.expect("save again");
    let next = ctx.resume(&session.session_key().expect("key"));
    assert_eq!(next.len().await.expect("len"), 2);
}

/// Changes saved in one request are what the next request sees, under the same key.
pub async fn session_changes_reach_the_next_request(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("visits", json!(1))]).await;
    let second = ctx.resume(&key);
    let visits = second.get::<i64>("visits").await.expect("get").unwrap_or(0);
    second.insert("visits", visits + 1).await.expect("insert");
    second.save().await.expect("save");
    assert_eq!(
        second.session_key().as_ref(),
        Some(&key),
        "an update keeps the key"
    );
    let third = ctx.resume(&key);
    assert_eq!(third.get::<i64>("visits").await.expect("get"), Some(2));
}

/// A session emptied by removing its last entry is saved empty, not deleted.
pub async fn session_emptied_session_saves_empty(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("only", json!(1))]).await;
    let session = ctx.resume(&key);
    session.remove("only").await.expect("remove");
    session.save().await.expect("save");
    assert!(is_stored(&ctx, &key).await, "the record stays");
    assert!(ctx.resume(&key).is_empty().await.expect("is_empty"));
}

/// `flush` deletes the record at once, clears the data and drops the key.
pub async fn session_flush_deletes_at_once(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(1))]).await;
    let session = ctx.resume(&key);
    assert_eq!(session.get::<i64>("user_id").await.expect("get"), Some(1));
    session.flush().await.expect("flush");
    assert!(
        !is_stored(&ctx, &key).await,
        "flush deletes before the request ends"
    );
    assert!(session.session_key().is_none());
    assert!(session.inspect().void);
    assert!(session.is_empty().await.expect("is_empty"));
    assert!(session.is_modified());
}

/// `flush` of a session never loaded still deletes its record.
pub async fn session_flush_unloaded_session(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(1))]).await;
    let session = ctx.resume(&key);
    session.flush().await.expect("flush");
    assert!(!is_stored(&ctx, &key).await);
    assert!(session.inspect().void);
}

/// `cycle_key` keeps the data under a new key; the old record is gone after the save.
pub async fn session_cycle_key_keeps_data(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("cart", json!([1, 2]))]).await;
    let session = ctx.resume(&key);
    assert!(session.get_value("cart").await.expect("get").is_some());
    session.cycle_key().await.expect("cycle_key");
    session.insert("user_id", 9).await.expect("insert");
    session.save().await.expect("save");
    let new = session.session_key().expect("key");
    assert_ne!(new, key);
    assert!(!is_stored(&ctx, &key).await, "the old record is deleted");
    let next = ctx.resume(&new);
    assert_eq!(
        next.get_value("cart").await.expect("get"),
        Some(json!([1, 2]))
    );
    assert_eq!(next.get::<i64>("user_id").await.expect("get"), Some(9));
}

/// `cycle_key` on a session not loaded yet loads it first and keeps its data.
pub async fn session_cycle_key_unloaded_session(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("cart", json!("full"))]).await;
    let session = ctx.resume(&key);
    session.cycle_key().await.expect("cycle_key");
    session.save().await.expect("save");
    let new = session.session_key().expect("key");
    assert_ne!(new, key);
    assert!(!is_stored(&ctx, &key).await);
    let next = ctx.resume(&new);
    assert_eq!(
        next.get::<String>("cart").await.expect("get").as_deref(),
        Some("full")
    );
}

/// `cycle_key` on a brand-new session simply creates it at save.
pub async fn session_cycle_key_new_session(ctx: CaseContext) {
    let session = ctx.session();
    session.insert("a", 1).await.expect("insert");
    session.cycle_key().await.expect("cycle_key");
    session.save().await.expect("save");
    let key = session.session_key().expect("key");
    assert_eq!(
        ctx.resume(&key).get::<i64>("a").await.expect("get"),
        Some(1)
    );
}

/// A login (`cycle_key`) racing a logout (`flush`) never revives the session.
pub async fn session_cycle_key_after_concurrent_flush_is_interrupted(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(1))]).await;
    let login = ctx.resume(&key);
    login.cycle_key().await.expect("cycle_key");
    let new = login.session_key().expect("the new key");
    ctx.resume(&key)
        .flush()
        .await
        .expect("the concurrent logout");
    let outcome = login.save().await;
    assert!(
        matches!(outcome, Err(SessionError::Interrupted)),
        "got {outcome:?}"
    );
    assert!(!is_stored(&ctx, &key).await, "the old record stays deleted");
    assert!(!is_stored(&ctx, &new).await, "no record under the new key");
    assert!(login.session_key().is_none());
    assert!(
        login.is_empty().await.expect("is_empty"),
        "an interrupted session keeps no data to revive"
    );
}

/// `flush` after `cycle_key` (before any save) deletes the old record.
pub async fn session_flush_after_cycle_key_deletes_old_record(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(1))]).await;
    let session = ctx.resume(&key);
    session.cycle_key().await.expect("cycle_key");
    session.flush().await.expect("flush");
    assert!(!is_stored(&ctx, &key).await);
    assert!(session.inspect().void);
}

/// A cookie that is not a valid key gives a new session, which gets a fresh key on save.
pub async fn session_invalid_cookie_gets_fresh_key(ctx: CaseContext) {
    let config = std::sync::Arc::new(SessionConfig::default());
    for bad in [
        "",
        "../../etc/passwd",
        "short",
        "UPPERCASEUPPERCASEUPPERCASEUPPER",
        "ab\0cd",
    ] {
        let session = Session::from_cookie(ctx.store().clone(), config.clone(), bad);
        assert!(
            session.session_key().is_none(),
            "{bad:?} was accepted as a key"
        );
        assert!(session.is_empty().await.expect("is_empty"));
        session.insert("a", 1).await.expect("insert");
        session.save().await.expect("save");
        let key = session.session_key().expect("a fresh key");
        assert_ne!(key.expose_secret(), bad);
        assert!(is_stored(&ctx, &key).await);
    }
}

/// A well-formed key the store does not know is dropped, never adopted, and creates no record.
pub async fn session_unknown_key_not_adopted(ctx: CaseContext) {
    let planted = SessionKey::generate();
    let session = ctx.resume(&planted);
    assert!(session.is_empty().await.expect("is_empty"));
    assert!(
        session.session_key().is_none(),
        "the unknown key is dropped at load"
    );
    assert!(session.inspect().void);
    session.insert("user_id", 1).await.expect("insert");
    session.save().await.expect("save");
    let key = session.session_key().expect("key");
    assert_ne!(key, planted, "an attacker-chosen key is never adopted");
    assert!(!is_stored(&ctx, &planted).await);
}

/// By default the expiry age is `cookie_age` and the record expires that far ahead.
pub async fn session_default_expiry_age_is_cookie_age(ctx: CaseContext) {
    let session = ctx.session();
    assert_eq!(
        session.expiry_age().await.expect("age").whole_seconds(),
        DEFAULT_AGE
    );
    assert_near(session.expiry_date().await.expect("date"), DEFAULT_AGE);
    assert!(
        !session
            .expire_at_browser_close()
            .await
            .expect("browser close")
    );
    let short = ctx.session_with(SessionConfig::new().cookie_age(Duration::hours(1)));
    short.insert("a", 1).await.expect("insert");
    assert_eq!(short.expiry_age().await.expect("age").whole_seconds(), 3600);
    short.save().await.expect("save");
    let record = stored_record(&ctx, &short).await;
    assert_near(record.expires_at(), 3600);
}

async fn stored_record(ctx: &CaseContext, session: &Session) -> Record {
    let key = session.session_key().expect("key");
    ctx.store()
        .load(&ctx.id_of(&key))
        .await
        .expect("load")
        .expect("a live record")
}

/// An inactivity expiry gives its age, a date that far ahead, and the record's expiry.
pub async fn session_inactivity_expiry(ctx: CaseContext) {
    let session = ctx.session();
    session
        .set_expiry(Expiry::Inactivity(Duration::minutes(10)))
        .await
        .expect("set_expiry");
    assert!(session.is_modified());
    assert_eq!(
        session.expiry_age().await.expect("age").whole_seconds(),
        600
    );
    assert_near(session.expiry_date().await.expect("date"), 600);
    assert!(
        !session
            .expire_at_browser_close()
            .await
            .expect("browser close")
    );
    session.save().await.expect("save");
    assert_near(stored_record(&ctx, &session).await.expires_at(), 600);
}

/// A fixed moment gives the floored seconds until then, and that exact date.
pub async fn session_moment_expiry(ctx: CaseContext) {
    let at = in_ms(3_600_500);
    let session = ctx.session();
    session
        .set_expiry(Expiry::At(at))
        .await
        .expect("set_expiry");
    let age = session.expiry_age().await.expect("age").whole_seconds();
    assert!((3595..=3600).contains(&age), "age {age}");
    let truncated = Record::new(SessionKey::generate().record_id(), "", at).expires_at();
    assert_eq!(session.expiry_date().await.expect("date"), truncated);
    assert!(
        !session
            .expire_at_browser_close()
            .await
            .expect("browser close")
    );
    session.save().await.expect("save");
    assert_eq!(stored_record(&ctx, &session).await.expires_at(), truncated);
}

/// Browser-close expiry: a session cookie, but the record still lives `cookie_age`.
pub async fn session_browser_close_expiry(ctx: CaseContext) {
    let session = ctx.session();
    session
        .set_expiry(Expiry::BrowserClose)
        .await
        .expect("set_expiry");
    assert!(
        session
            .expire_at_browser_close()
            .await
            .expect("browser close")
    );
    assert_eq!(
        session.expiry_age().await.expect("age").whole_seconds(),
        DEFAULT_AGE
    );
    session.save().await.expect("save");
    assert_near(
        stored_record(&ctx, &session).await.expires_at(),
        DEFAULT_AGE,
    );
}

/// `expire_at_browser_close` in the config applies to `Default` sessions only.
pub async fn session_browser_close_from_config(ctx: CaseContext) {
    let config = SessionConfig::new().expire_at_browser_close(true);
    let session = ctx.session_with(config.clone());
    assert!(
        session
            .expire_at_browser_close()
            .await
            .expect("browser close")
    );
    session
        .set_expiry(Expiry::Inactivity(Duration::hours(1)))
        .await
        .expect("set_expiry");
    assert!(
        !session
            .expire_at_browser_close()
            .await
            .expect("browser close")
    );
}

/// The expiry setting travels in the payload and is in force on the next request.
pub async fn session_expiry_survives_reload(ctx: CaseContext) {
    let cases = [
        Expiry::Inactivity(Duration::minutes(5)),
        Expiry::At(in_ms(7_200_000)),
        Expiry::BrowserClose,
    ];
    for expiry in cases {
        let session = ctx.session();
        session.insert("a", 1).await.expect("insert");
        session.set_expiry(expiry).await.expect("set_expiry");
        let expected = session.expiry().await.expect("expiry");
        session.save().await.expect("save");
        let next = ctx.resume(&session.session_key().expect("key"));
        assert_eq!(next.expiry().await.expect("expiry"), expected);
        if let Expiry::Inactivity(_) = expiry {
            assert_eq!(next.expiry_age().await.expect("age").whole_seconds(), 300);
        }
        if let Expiry::BrowserClose = expiry {
            assert!(next.expire_at_browser_close().await.expect("browser close"));
        }
    }
}

/// `set_expiry(Expiry::Default)` returns to the configuration, also after a reload.
pub async fn session_expiry_default_resets(ctx: CaseContext) {
    let session = ctx.session();
    session
        .set_expiry(Expiry::Inactivity(Duration::seconds(30)))
        .await
        .expect("set_expiry");
    session.save().await.expect("save");
    let key = session.session_key().expect("key");
    let next = ctx.resume(&key);
    next.set_expiry(Expiry::Default).await.expect("set_expiry");
    assert!(next.is_modified());
    next.save().await.expect("save");
    let last = ctx.resume(&key);
    assert_eq!(last.expiry().await.expect("expiry"), Expiry::Default);
    assert_eq!(
        last.expiry_age().await.expect("age").whole_seconds(),
        DEFAULT_AGE
    );
    assert_near(stored_record(&ctx, &last).await.expires_at(), DEFAULT_AGE);
}

/// A session saved with a moment 10 s in the past has a negative age and is empty on the
/// next load.
pub async fn session_past_moment_is_empty_next_load(ctx: CaseContext) {
    let session = ctx.session();
    session.insert("user_id", 1).await.expect("insert");
    session
        .set_expiry(Expiry::At(in_ms(-10_000)))
        .await
        .expect("set_expiry");
    let age = session.expiry_age().await.expect("age").whole_seconds();
    assert!((-15..=-10).contains(&age), "age {age}");
    session.save().await.expect("save");
    let next = ctx.resume(&session.session_key().expect("key"));
    assert!(next.is_empty().await.expect("is_empty"));
    assert!(next.session_key().is_none());
}

/// A save after a concurrent logout fails as interrupted and does not bring the record back.
pub async fn session_save_after_concurrent_delete_is_interrupted(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(1))]).await;
    let slow = ctx.resume(&key);
    assert_eq!(slow.get::<i64>("user_id").await.expect("get"), Some(1));
    ctx.resume(&key)
        .flush()
        .await
        .expect("the concurrent logout");
    slow.insert("cart", "full").await.expect("insert");
    let outcome = slow.save().await;
    assert!(
        matches!(outcome, Err(SessionError::Interrupted)),
        "got {outcome:?}"
    );
    assert!(!is_stored(&ctx, &key).await, "the logout stays a logout");
    assert!(slow.session_key().is_none());
}

/// A payload that does not decode loads as an empty session, and its key is not reused.
pub async fn session_corrupt_payload_loads_empty(ctx: CaseContext) {
    for garbage in [
        "not json",
        r#"{"v":99,"data":{}}"#,
        r#"{"v":1,"data":[1,2]}"#,
        "{\"v\":1,",
    ] {
        let key = SessionKey::generate();
        let record = Record::new(ctx.id_of(&key), garbage, in_ms(3_600_000));
        ctx.store().create(&record).await.expect("create garbage");
        let session = ctx.resume(&key);
        assert!(session.is_empty().await.expect("is_empty"), "{garbage:?}");
        assert!(session.session_key().is_none());
        session.insert("a", 1).await.expect("insert");
        session.save().await.expect("save");
        assert_ne!(session.session_key().as_ref(), Some(&key));
    }
}

/// A load that fails (store down) poisons the session: reads fail and nothing is written.
pub async fn session_failed_load_poisons(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(1))]).await;
    let (faulty, ctx) = ctx.faulty();
    faulty.set_faults(Faults::Reads);
    let session = ctx.resume(&key);
    assert!(matches!(
        session.get::<i64>("user_id").await,
        Err(SessionError::Store(_))
    ));
    assert!(session.inspect().poisoned);
    faulty.set_faults(Faults::None);
    assert!(matches!(
        session.insert("user_id", 2).await,
        Err(SessionError::Poisoned)
    ));
    assert!(matches!(session.save().await, Err(SessionError::Poisoned)));
    assert_eq!(
        ctx.resume(&key).get::<i64>("user_id").await.expect("get"),
        Some(1),
        "the stored data is untouched"
    );
}

/// Django's test-cookie helpers.
pub async fn session_test_cookie_helpers(ctx: CaseContext) {
    let session = ctx.session();
    assert!(!session.test_cookie_worked().await.expect("worked"));
    session.set_test_cookie().await.expect("set");
    session.save().await.expect("save");
    let next = ctx.resume(&session.session_key().expect("key"));
    assert!(next.test_cookie_worked().await.expect("worked"));
    next.delete_test_cookie().await.expect("delete");
    assert!(!next.test_cookie_worked().await.expect("worked"));
    assert!(!next.contains_key(TEST_COOKIE_NAME).await.expect("contains"));
}

/// A session whose encoded data fills the size limit exactly saves and reloads; one byte
/// more fails with `SessionError::TooLarge` naming both sizes, and the stored record keeps
/// its earlier data. Sizes are measured with the store's own codec, and the data does not
/// compress, so the case holds for codecs that compress (Django's) too.
pub async fn session_payload_limit_is_enforced_at_save(ctx: CaseContext) {
    let key = saved_session(&ctx, &[("user_id", json!(42))]).await;
    let limit = session_core::DEFAULT_MAX_PAYLOAD_BYTES;
    let encoded_len = |n: usize| {
        let entries = serde_json::from_value(
            json!({"user_id": 42, "blob": crate::fixtures::incompressible(n)}),
        )
        .expect("a map");
        ctx.store().codec().encode(&entries, Expiry::Default).len()
    };
    // The longest blob whose payload fits.
    let (mut fits, mut over) = (0, limit);
    while over - fits > 1 {
        let mid = (fits + over) / 2;
        if encoded_len(mid) <= limit {
            fits = mid
        } else {
            over = mid
        }
    }
    let session = ctx.resume(&key);
    session
        .insert("blob", crate::fixtures::incompressible(fits))
        .await
        .expect("insert");
    session.save().await.expect("a session at the limit saves");
    let reloaded = ctx.resume(&key);
    let blob: String = reloaded.get("blob").await.expect("get").expect("blob");
    assert_eq!(blob.len(), fits);

    let over_session = ctx.resume(&key);
    over_session
        .insert("blob", crate::fixtures::incompressible(fits + 1))
        .await
        .expect("insert");
    match over_session.save().await {
        Err(SessionError::TooLarge { size, limit: named }) => {
            assert_eq!(named, limit);
            assert!(size > limit, "{size} is not over {limit}");
            assert_eq!(size, encoded_len(fits + 1));
        }
        other => panic!("expected TooLarge past the limit, got {other:?}"),
    }
    let kept = ctx.resume(&key);
    let blob: String = kept.get("blob").await.expect("get").expect("blob");
    assert_eq!(blob.len(), fits, "the stored record was changed");
}
