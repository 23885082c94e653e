#![doc = include_str!("../README.md")]
//!
//! ## Details
//!
//! The conformance kit every session store runs, ours and third-party ones alike. Start with
//! the [`guide`] ("Writing a store").
//!
//! [`store_conformance!`] expands to one plain `#[test]` per rule of the store contract, in a
//! module named after its first argument (so every test name carries the engine's name). Each
//! case runs on a thread and multi-thread tokio runtime of its own under a timeout enforced
//! from outside, against a fresh store from your factory:
//!
//! ```
//! // tests/conformance.rs of a store crate
//! use session_testkit::{Capabilities, store_conformance};
//!
//! store_conformance!(memory, Capabilities::new(), || async { session_core::MemoryStore::new() });
//! # fn main() {}
//! ```
//!
//! That yields `memory::store_create_live_duplicate_is_rejected`,
//! `memory::store_boundary_load` and the rest. The factory is called once per case and must
//! return an isolated store (its own table, file, key prefix or directory), so cases may run
//! in parallel against one server. Engines that need a server declare it in their
//! [`Capabilities`] and find it through [`services`]. [`session_conformance!`] (opt-in) adds
//! the session and request-lifecycle cases, which test `session-core`'s own rules.
//!
//! Also here: [`CountingStore`], to assert how much I/O a request costs, [`FaultyStore`], to
//! make a store fail on demand, and [`fixtures`] for cases of your own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use session_core::{KeyMapping, RecordId, Session, SessionConfig, SessionKey, SessionStore};

pub mod cases;
mod counting;
mod faulty;
pub mod fixtures;
pub mod frontend;
mod guarded;
pub mod guide;
pub mod services;

pub use counting::{CountingStore, Counts};
pub use faulty::{Faults, FaultyStore, InjectedFault};
pub use fixtures::unique_name;
pub use frontend::{Direct, Frontend};
pub use guarded::Guarded;
pub use services::Service;

/// What a store under test can do, and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The backend expires records by itself (Redis): `clear_expired` may return 0.
    pub self_expiring: bool,
    /// Servers the factory needs (up to four); without them the cases are skipped (or fail
    /// under `SESSION_TEST_REQUIRE=1`).
    pub requires: [Option<Service>; 4],
    /// How long one case may take before it fails as hung.
    pub timeout: Duration,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::new()
    }
}

impl Capabilities {
    /// A store that needs no server and expires nothing by itself; 30 s per case.
    pub const fn new() -> Self {
        Self {
            self_expiring: false,
            requires: [None; 4],
            timeout: Duration::from_secs(30),
        }
    }

    /// The backend expires records by itself.
    pub const fn self_expiring(mut self) -> Self {
        self.self_expiring = true;
        self
    }

    /// The factory needs this service (call once per service, up to four).
    ///
    /// # Panics
    ///
    /// When more than four services are required.
    pub const fn requires(mut self, service: Service) -> Self {
        let mut slot = 0;
        while slot < self.requires.len() {
            if self.requires[slot].is_none() {
                self.requires[slot] = Some(service);
                return self;
            }
            slot += 1;
        }
        panic!("Capabilities::requires takes at most four services");
    }

    /// The services the factory needs.
    pub fn required_services(&self) -> impl Iterator<Item = Service> + '_ {
        self.requires.iter().flatten().copied()
    }

    /// Sets the per-case timeout.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What a case gets: the store under test and its capabilities.
#[derive(Clone)]
pub struct CaseContext {
    store: Arc<dyn SessionStore>,
    caps: Capabilities,
    frontend: Arc<dyn Frontend>,
}

impl CaseContext {
    /// Wraps a store for a case.
    pub fn new(store: Arc<dyn SessionStore>, caps: Capabilities) -> Self {
        Self {
            store,
            caps,
            frontend: Arc::new(Direct),
        }
    }

    /// The same context, with lifecycle requests served through `frontend`.
    pub fn with_frontend(mut self, frontend: Arc<dyn Frontend>) -> Self {
        self.frontend = frontend;
        self
    }

    /// What serves the lifecycle cases' requests ([`Direct`] unless a framework adapter's
    /// [`lifecycle_conformance!`] set one).
    pub fn frontend(&self) -> &Arc<dyn Frontend> {
        &self.frontend
    }

    /// The store under test.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The store's capabilities.
    pub fn caps(&self) -> Capabilities {
        self.caps
    }

    /// A record id no other case uses, of the shape the store's
    /// [`key_mapping`](SessionStore::key_mapping) gives (a hash, or a raw key).
    pub fn fresh_id(&self) -> RecordId {
        self.id_of(&SessionKey::generate())
    }

    /// The id the store keeps `key`'s session under.
    pub fn id_of(&self, key: &SessionKey) -> RecordId {
        key.record_id_for(self.store.key_mapping())
    }

    /// An id of the store's shape spelled out in full: 64 hex digits for hashed ids, a
    /// 32-character key for raw ones; `None` for anything else.
    pub fn id_from_text(&self, text: &str) -> Option<RecordId> {
        match self.store.key_mapping() {
            KeyMapping::RawKey => {
                SessionKey::parse(text).map(|key| key.record_id_for(KeyMapping::RawKey))
            }
            _ => RecordId::parse(text),
        }
    }

    /// A new session on the store, with Django's default settings.
    pub fn session(&self) -> Session {
        self.session_with(SessionConfig::default())
    }

    /// A new session on the store, with these settings.
    pub fn session_with(&self, config: SessionConfig) -> Session {
        Session::new(self.store.clone(), Arc::new(config))
    }

    /// The session a later request resumes from its cookie.
    pub fn resume(&self, key: &SessionKey) -> Session {
        self.resume_with(key, SessionConfig::default())
    }

    /// The session a later request resumes from its cookie, with these settings.
    pub fn resume_with(&self, key: &SessionKey, config: SessionConfig) -> Session {
        Session::from_cookie(self.store.clone(), Arc::new(config), key.expose_secret())
    }

    /// The same store behind a [`CountingStore`], for cases that count I/O.
    pub fn counting(&self) -> (Arc<CountingStore<Arc<dyn SessionStore>>>, CaseContext) {
        let counting = Arc::new(CountingStore::new(self.store.clone()));
        let ctx =
            CaseContext::new(counting.clone(), self.caps).with_frontend(self.frontend.clone());
        (counting, ctx)
    }

    /// The same store behind a [`FaultyStore`], for cases that need failures.
    pub fn faulty(&self) -> (Arc<FaultyStore<Arc<dyn SessionStore>>>, CaseContext) {
        let faulty = Arc::new(FaultyStore::new(self.store.clone()));
        let ctx = CaseContext::new(faulty.clone(), self.caps).with_frontend(self.frontend.clone());
        (faulty, ctx)
    }
}

/// Runs one case: skips it when a required service is missing, else builds a multi-thread
/// runtime on a thread of the case's own, makes a store with `factory` and runs `case` there.
/// The timeout is enforced from the calling thread, so a store that blocks its thread (a
/// `std::sync::Mutex` taken twice, a blocking call inside an `async fn`) fails the case within
/// the timeout, naming it, and the other cases still run. [`store_conformance!`] calls this;
/// call it directly for engine-specific cases.
///
/// # Panics
///
/// When the case fails or times out, or a required service is missing under
/// `SESSION_TEST_REQUIRE=1`.
pub fn run_case<F, FF, S, C, CF>(name: &str, caps: Capabilities, factory: F, case: C)
where
    F: FnOnce() -> FF + Send + 'static,
    FF: Future<Output = S>,
    S: SessionStore,
    C: FnOnce(CaseContext) -> CF + Send + 'static,
    CF: Future<Output = ()>,
{
    run_case_through(name, caps, factory, || Arc::new(Direct), case);
}

/// [`run_case`] with the lifecycle requests served through the frontend `frontend` makes (on
/// the case's own thread): how [`lifecycle_conformance!`] runs the lifecycle cases through a
/// framework adapter.
pub fn run_case_through<F, FF, S, P, C, CF>(
    name: &str,
    caps: Capabilities,
    factory: F,
    frontend: P,
    case: C,
) where
    F: FnOnce() -> FF + Send + 'static,
    FF: Future<Output = S>,
    S: SessionStore,
    P: FnOnce() -> Arc<dyn Frontend> + Send + 'static,
    C: FnOnce(CaseContext) -> CF + Send + 'static,
    CF: Future<Output = ()>,
{
    // Every missing service is announced (or fails the case under SESSION_TEST_REQUIRE=1).
    let missing = caps
        .required_services()
        .filter(|&service| services::require(service).is_none())
        .count();
    if missing > 0 {
        return;
    }
    let (done, outcome) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("{name} (case)"))
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the case");
                runtime.block_on(async {
                    let store = factory().await;
                    let ctx = CaseContext::new(Arc::new(store), caps).with_frontend(frontend());
                    case(ctx).await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            }));
            let _ = done.send(result);
        });
    if let Err(error) = spawned {
        panic!("conformance case {name}: could not start its thread: {error}");
    }
    match outcome.recv_timeout(caps.timeout) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!(
            "conformance case {name} did not finish within {:?}: the store hangs or blocks its \
             thread (a lock held across an await, a blocking call in an async fn?)",
            caps.timeout
        ),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("conformance case {name} ended without a result")
        }
    }
}

/// Generates one `#[test]` per store-contract case, in a module named `$name`: every rule of
/// [`SessionStore`], plus the few end-to-end cases where a store's behaviour shows through a
/// session (a concurrent logout during a save or a rotation, a corrupt payload, a failed
/// load). This is what a store author runs.
///
/// `store_conformance!(name, capabilities, factory)`: `capabilities` is a [`Capabilities`],
/// `factory` a closure returning a future that yields a fresh, isolated store.
#[macro_export]
macro_rules! store_conformance {
    ($name:ident, $caps:expr, $factory:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__contract_cases!($crate::__conformance_test; $caps, $factory);
        }
    };
}

/// Opt-in: generates one `#[test]` per session and request-lifecycle case (Django's
/// `SessionBase` and `SessionMiddleware` rules through [`Session`] and
/// `SessionManager`), in a module named `$name`. These rules live in `session-core` and run
/// there once on `MemoryStore`; run them on a store only to see the whole stack on it.
#[macro_export]
macro_rules! session_conformance {
    ($name:ident, $caps:expr, $factory:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__session_cases!($crate::__conformance_test; $caps, $factory);
        }
    };
}

/// The owner-index cases ("log out everywhere") for a store whose
/// [`owner_index`](session_core::SessionStore::owner_index) is `Some`: one `#[test]` per case,
/// named `owner_*`, in a module named after the first argument. One case writes 100,000
/// records (1,000 of one owner among them) and gets at least five minutes whatever `caps`
/// says.
///
/// ```
/// use session_testkit::{Capabilities, owner_conformance};
///
/// owner_conformance!(memory_owner, Capabilities::new(), || async { session_core::MemoryStore::new() });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! owner_conformance {
    ($name:ident, $caps:expr, $factory:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__owner_cases!($crate::__conformance_test; $caps, $factory);

            #[test]
            fn owner_lists_1000_sessions_among_100000() {
                let caps: $crate::Capabilities = $caps;
                let timeout = caps.timeout.max(::std::time::Duration::from_secs(300));
                $crate::run_case(
                    concat!(module_path!(), "::owner_lists_1000_sessions_among_100000"),
                    caps.timeout(timeout),
                    $factory,
                    $crate::cases::owner_lists_1000_sessions_among_100000,
                );
            }
        }
    };
}

/// The request-lifecycle cases (`lifecycle_*`, a subset of [`session_conformance!`]) served
/// through a framework adapter: `$frontend` is an expression giving an
/// `Arc<dyn Frontend>` (see [`frontend`]), so every case checks that the adapter applies what
/// `SessionManager` decides (cookies, `Vary`, the 400/503/500 replacements, no save on 5xx).
///
/// ```
/// use std::sync::Arc;
/// use session_testkit::{Capabilities, Direct, lifecycle_conformance};
///
/// lifecycle_conformance!(direct_memory, Capabilities::new(), || async { session_core::MemoryStore::new() }, Arc::new(Direct));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! lifecycle_conformance {
    ($name:ident, $caps:expr, $factory:expr, $frontend:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__lifecycle_cases!($crate::__frontend_test; $caps, $factory, $frontend);
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __frontend_test {
    ($case:ident; [$caps:expr, $factory:expr, $frontend:expr]) => {
        #[test]
        fn $case() {
            $crate::run_case_through(
                concat!(module_path!(), "::", stringify!($case)),
                $caps,
                $factory,
                || $frontend,
                $crate::cases::$case,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __owner_cases {
    ($callback:path; $($args:tt)*) => {
        $crate::__each_case!(@list $callback; [$($args)*];
            owner_record_roundtrips_beside_the_payload,
            owner_survives_cycle_key_and_flush_drops_it,
            owner_expired_and_deleted_sessions_are_never_listed,
            owner_end_other_sessions_keeps_only_the_current_one,
            owner_two_owners_never_see_each_other,
            owner_last_seen_follows_reads_at_the_interval,
            owner_ids_are_checked,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    ($case:ident; [$caps:expr, $factory:expr]) => {
        #[test]
        fn $case() {
            $crate::run_case(
                concat!(module_path!(), "::", stringify!($case)),
                $caps,
                $factory,
                $crate::cases::$case,
            );
        }
    };
}

/// Calls `$callback!(case; args…)` for every store-contract case: the single list of them.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($callback:path; $($args:tt)*) => {
        $crate::__each_case!(@list $callback; [$($args)*];
            store_load_missing_is_none,
            store_roundtrip_unicode,
            store_roundtrip_nul_escape,
            store_roundtrip_100_kib,
            store_roundtrip_at_size_limit,
            store_roundtrip_empty_object,
            store_create_live_duplicate_is_rejected,
            store_create_replaces_expired_leftover,
            store_update_live_record,
            store_update_missing_is_not_found,
            store_update_deleted_is_not_found,
            store_update_expired_is_not_found,
            store_update_unchanged_payload,
            store_load_expired_is_none,
            store_record_expires_after_deadline,
            store_delete_reports_live_and_is_idempotent,
            store_delete_expired_reports_false,
            store_touch_moves_expiry_keeps_payload,
            store_touch_missing_is_not_found,
            store_touch_expired_is_not_found,
            store_clear_expired_removes_only_expired,
            store_expires_at_roundtrips_to_the_millisecond,
            store_records_are_independent,
            store_concurrent_creates_all_load,
            store_concurrent_updates_never_mix,
            store_boundary_load,
            store_boundary_update,
            store_boundary_touch,
            store_boundary_delete,
            store_boundary_clear_expired,
            store_create_race_has_one_winner,
            store_touch_never_undoes_a_concurrent_update,
            store_payload_kept_byte_for_byte,
            store_concurrent_readers_never_see_torn_payloads,
            store_ids_sharing_prefixes_or_suffixes_stay_apart,
            store_operations_touch_one_record_only,
            store_far_future_expiries_roundtrip,
            store_touch_to_the_past_expires_the_record,
            session_cycle_key_after_concurrent_flush_is_interrupted,
            session_save_after_concurrent_delete_is_interrupted,
            session_corrupt_payload_loads_empty,
            session_failed_load_poisons,
            lifecycle_concurrent_logout_is_interrupted,
        );
    };
}

/// Calls `$callback!(case; args…)` for every session and lifecycle case.
#[doc(hidden)]
#[macro_export]
macro_rules! __session_cases {
    ($callback:path; $($args:tt)*) => {
        $crate::__each_case!(@list $callback; [$($args)*];
            session_new_flags,
            session_get_on_empty,
            session_loads_lazily,
            session_insert_sets_flags,
            session_insert_equal_value_not_modified,
            session_get_wrong_type_is_error,
            session_typed_values_roundtrip,
            session_remove_flags,
            session_pop_flags,
            session_pop_missing_not_modified,
            session_pop_wrong_type_keeps_value,
            session_set_default,
            session_update_many,
            session_inspection,
            session_clear_flags,
            session_save_new_persists,
            session_save_new_empty_creates_record,
            session_save_keeps_in_memory_data,
            session_changes_reach_the_next_request,
            session_emptied_session_saves_empty,
            session_flush_deletes_at_once,
            session_flush_unloaded_session,
            session_cycle_key_keeps_data,
            session_cycle_key_unloaded_session,
            session_cycle_key_new_session,
            session_flush_after_cycle_key_deletes_old_record,
            session_invalid_cookie_gets_fresh_key,
            session_unknown_key_not_adopted,
            session_default_expiry_age_is_cookie_age,
            session_inactivity_expiry,
            session_moment_expiry,
            session_browser_close_expiry,
            session_browser_close_from_config,
            session_expiry_survives_reload,
            session_expiry_default_resets,
            session_past_moment_is_empty_next_load,
            session_test_cookie_helpers,
            session_payload_limit_is_enforced_at_save,
        );
        $crate::__lifecycle_cases!($callback; $($args)*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lifecycle_cases {
    ($callback:path; $($args:tt)*) => {
        $crate::__each_case!(@list $callback; [$($args)*];
            lifecycle_cookie_attributes_from_config,
            lifecycle_default_cookie_attributes,
            lifecycle_browser_close_has_no_max_age,
            lifecycle_server_error_writes_nothing,
            lifecycle_flush_removes_cookie,
            lifecycle_flush_without_cookie,
            lifecycle_emptied_session_saved_empty,
            lifecycle_untouched_session_no_io,
            lifecycle_read_only_one_load,
            lifecycle_changed_session_one_update,
            lifecycle_new_empty_session_not_created,
            lifecycle_save_every_request_touches,
            lifecycle_touch_threshold_skips_fresh,
            lifecycle_fixed_moment_not_touched,
            lifecycle_stale_cookie_removed,
            lifecycle_unknown_key_no_create,
            lifecycle_store_failure_is_503,
            lifecycle_cycle_key_sends_new_key,
            lifecycle_explicit_save_sends_cookie,
            lifecycle_reads_every_cookie_header,
            lifecycle_non_ascii_cookie_header_keeps_session,
            lifecycle_unknown_key_never_shadows_live_one,
            lifecycle_session_cookie_lookups_are_bounded,
            lifecycle_oversized_session_is_500_and_keeps_record,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __each_case {
    (@list $callback:path; $args:tt; $($case:ident),* $(,)?) => {
        $( $callback!($case; $args); )*
    };
}
