//! `FileStore`: the store contract on a directory of files.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::time::OffsetDateTime;
use session_core::{
    OwnedSession, OwnerIndex, Ownership, Record, RecordId, SessionStore, StoreError,
};
use tokio::runtime::RuntimeFlavor;

use crate::dir::Dir;
use crate::format;

/// Temp files older than this are leftovers of a crash; `clear_expired` removes them.
const TEMP_GRACE: Duration = Duration::from_secs(60);

/// Sessions as files in a directory, one per session: Django's `file` engine, crash-safe.
///
/// - A record lives in `<dir>/<prefix><record id>` (prefix `sessionid` by default, as
///   Django), mode 0600, readable with `cat`: the expiry on the first line, then the payload.
/// - Every write goes to a temp file (named with a leading dot, so it never matches a
///   record), is fsynced, then hard-linked (`create`) or renamed (`update`, `touch`) into
///   place: a crash leaves the old or the new file, never a torn one.
/// - `create` and `delete` then fsync the directory, so a new session and a logout survive
///   a power loss. `update` and `touch` do not by default: the rename reaches the disk with
///   the file system's next commit (ext4: within 5 s), so a power loss can undo the last
///   seconds of updates (the previous version comes back whole), never a create or a
///   `flush` (logout). That second fsync costs about a third of a save; turn it back on with
///   [`FileOptions::durable_updates`].
/// - `update`, `touch` and `delete` check and replace under an exclusive file lock (one of
///   256 lock files in `<dir>/.<prefix>.locks/`), so an update never revives a record that a
///   concurrent `delete` removed, even from another process sharing the directory.
/// - Symlinks at record paths are refused (`O_NOFOLLOW`); paths are built from record ids
///   only, so no input can reach outside the directory.
/// - The directory must belong to the effective user and not be writable by group or others
///   (construction fails otherwise, with the fix in the message), and a record file that is
///   not the user's own, or that group or others may write, loads as no session with a
///   warning on `session::security`: no other local user can plant a session. See
///   [`FileOptions::allow_shared_directory`].
/// - File I/O never holds up the runtime's other tasks: on tokio's multi-thread runtime
///   (`#[tokio::main]`'s default) it runs in `block_in_place`, so the worker first hands
///   its other tasks to another thread and the request goes on without a round trip to the
///   blocking pool (only futures joined in the same task wait, as for any blocking call); on
///   a current-thread runtime it runs on the blocking pool.
/// - Owner index ([`OwnerIndex`]): an owned record has its ownership on its first line and
///   an empty marker file `<dir>/.<prefix>.owners/<owner digest>/<record id>`, written (and
///   fsynced) before the record, so ending an owner's sessions finds every record. Markers
///   of deleted records go with them; `clear_expired` removes those of expired records and
///   any left by a crash.
///
/// Unix only.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Session, SessionConfig};
/// use session_file::FileStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = FileStore::new(dir.path().join("sessions"))?;
/// let session = Session::new(Arc::new(store), Arc::new(SessionConfig::default()));
/// session.insert("user_id", 123).await?;
/// session.save().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: Arc<Dir>,
    durable_updates: bool,
}

/// Django's default file name prefix (its `SESSION_COOKIE_NAME`).
pub const DEFAULT_PREFIX: &str = "sessionid";

/// Options of [`FileStore::with_options`]: `FileOptions::new()` (the defaults), then chained
/// setters; checked when the store is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    /// The record file name prefix: [`DEFAULT_PREFIX`] unless set.
    pub prefix: String,
    /// Off by default, and best left off: the directory must then belong to the effective
    /// user and not be writable by group or others (else construction fails), and a record
    /// file that another user owns, or that group or others may write, loads as no session
    /// with a warning. Anyone who can write to the directory could otherwise plant a record
    /// and log in as anyone. Turn it on only for a directory shared on purpose between
    /// accounts you trust alike.
    pub allow_shared_directory: bool,
    /// Off by default. On, `update` and `touch` also fsync the directory after the rename,
    /// so an acknowledged update survives a power loss, at about a third more time per save.
    /// Off, a power loss can bring back the previous version of a record updated in the last
    /// seconds (whole, never torn); creates and deletes (a new session, a logout) are durable
    /// either way.
    pub durable_updates: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            allow_shared_directory: false,
            durable_updates: false,
        }
    }
}

impl FileOptions {
    /// The defaults: prefix `sessionid`, a private directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`prefix`](Self::prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`allow_shared_directory`](Self::allow_shared_directory).
    pub const fn allow_shared_directory(mut self, allow_shared_directory: bool) -> Self {
        self.allow_shared_directory = allow_shared_directory;
        self
    }

    /// Sets [`durable_updates`](Self::durable_updates).
    pub const fn durable_updates(mut self, durable_updates: bool) -> Self {
        self.durable_updates = durable_updates;
        self
    }
}

impl FileStore {
    /// A store in `dir`, created (mode 0700) when missing. Fails with a clear error when the
    /// path is not a directory or cannot be written. Blocks briefly: call it at start-up.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::with_prefix(dir, DEFAULT_PREFIX)
    }

    /// A store in `dir` whose record files start with `prefix` (1 to 64 characters of
    /// `[A-Za-z0-9_-]`), so several stores can share a directory.
    pub fn with_prefix(dir: impl AsRef<Path>, prefix: &str) -> Result<Self, StoreError> {
        Self::with_options(dir, FileOptions::new().prefix(prefix.to_owned()))
    }

    /// A store in `dir` with these options.
    pub fn with_options(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, StoreError> {
        let FileOptions {
            prefix,
            allow_shared_directory,
            durable_updates,
        } = options;
        let prefix = prefix.as_str();
        let valid = (1..=64).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(StoreError::config(format!(
                "invalid file name prefix {prefix:?}: use 1 to 64 of [A-Za-z0-9_-]"
            )));
        }
        let path = dir.as_ref();
        let dir = Dir::open(path, prefix, allow_shared_directory).map_err(|error| {
            // A path that is no directory, or one we may not use, is a setting to fix; any
            // other I/O error is trouble with the disk.
            match error.kind() {
                ErrorKind::NotADirectory
                | ErrorKind::PermissionDenied
                | ErrorKind::ReadOnlyFilesystem => StoreError::config_caused_by(
                    format!("the session directory {} cannot be used", path.display()),
                    error,
                ),
                _ => StoreError::backend("opening the session directory", error),
            }
        })?;
        Ok(Self {
            dir: Arc::new(dir),
            durable_updates,
        })
    }

    /// The session directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs blocking file work off the runtime's other tasks: on a multi-thread runtime in
    /// [`block_in_place`](tokio::task::block_in_place) (the worker first hands its other
    /// tasks to another thread, and the calling task goes on without waiting for a thread
    /// of the blocking pool and back, two thread wake-ups per call); on a current-thread
    /// runtime on the blocking pool; outside tokio, where blocking is fine, in place.
    async fn blocking<T, F>(&self, context: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> Result<T, Failure> + Send + 'static,
    {
        let dir = self.dir.clone();
        let flavor = tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor());
        let outcome = match flavor {
            Ok(RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(|| work(&dir))),
            Ok(_) => tokio::task::spawn_blocking(move || work(&dir)).await,
            Err(_) => Ok(work(&dir)),
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Store(error))) => Err(error),
            Ok(Err(Failure::Io(error))) => Err(StoreError::backend(context, error)),
            Err(join) => Err(StoreError::backend(context, join)),
        }
    }
}

/// What a blocking operation can fail with.
enum Failure {
    Store(StoreError),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

fn now_millis() -> i64 {
    session_core::record::unix_millis(OffsetDateTime::now_utc())
}

/// What a record path holds.
enum Stored {
    Missing,
    Live(Record),
    Expired,
    /// Unreadable contents (logged as a warning).
    Corrupt,
}

fn read_stored(dir: &Dir, id: &RecordId) -> io::Result<Stored> {
    let bytes = match dir.read(id) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Stored::Missing),
        Err(error)
            if crate::dir::is_refusal(&error) || error.kind() == ErrorKind::PermissionDenied =>
        {
            warn_corrupt(dir, id, &error);
            return Ok(Stored::Corrupt);
        }
        Err(error) => return Err(error),
    };
    Ok(match format::decode_record(id, &bytes) {
        Ok(record) if record.expires_at_unix_millis() > now_millis() => Stored::Live(record),
        Ok(_) => Stored::Expired,
        Err(error) => {
            warn_corrupt(dir, id, &error);
            Stored::Corrupt
        }
    })
}

fn warn_corrupt(dir: &Dir, id: &RecordId, error: &dyn std::error::Error) {
    tracing::warn!(
        target: "session::security",
        file = %dir.record_path(id).display(),
        %error,
        "Session data corrupted; treating it as no session"
    );
}

/// The live record in a file; `None` when missing, expired or corrupted.
fn live_record(dir: &Dir, id: &RecordId) -> io::Result<Option<Record>> {
    Ok(match read_stored(dir, id)? {
        Stored::Live(record) => Some(record),
        Stored::Missing | Stored::Expired | Stored::Corrupt => None,
    })
}

/// Writes `record` to a temp file (fsynced) and renames it over the record's path; with
/// `durable`, fsyncs the directory too.
fn replace(dir: &Dir, record: &Record, durable: bool) -> io::Result<()> {
    let temp = dir.write_temp(&format::encode(record))?;
    if let Err(error) = fs::rename(&temp, dir.record_path(record.id())) {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    if durable { dir.sync() } else { Ok(()) }
}

/// Removes a record file if it is (still) expired, under its lock.
fn remove_if_expired(dir: &Dir, id: &RecordId) -> io::Result<bool> {
    let _lock = dir.lock(id)?;
    let bytes = match dir.read(id) {
        Ok(bytes) => bytes,
        // Not ours to judge (a symlink, another user's file): left alone, with a warning.
        Err(error) if crate::dir::is_refusal(&error) => {
            warn_corrupt(dir, id, &error);
            return Ok(false);
        }
        Err(error) => return Err(error),
    };
    let (expired, owner) = match bytes.as_deref().map(format::decode_parts) {
        Some(Ok((millis, ownership, _))) => (
            millis <= now_millis(),
            ownership.and_then(Ownership::from_json),
        ),
        Some(Err(_)) | None => (false, None),
    };
    if expired {
        remove(dir, id)?;
        if let Some(ownership) = owner {
            dir.unmark(ownership.owner(), id)?;
        }
    }
    Ok(expired)
}

/// The owner of whatever record (live or expired) the file of `id` holds.
fn stored_owner(dir: &Dir, id: &RecordId) -> io::Result<Option<Ownership>> {
    Ok(match dir.read(id) {
        Ok(Some(bytes)) => format::decode_record(id, &bytes)
            .ok()
            .and_then(|mut record| record.take_ownership()),
        Ok(None) => None,
        Err(error) if crate::dir::is_refusal(&error) => None,
        Err(error) => return Err(error),
    })
}

/// Moves `id`'s owner marker from `before`'s owner to `after`'s; the caller has marked
/// `after` before writing the record.
fn unmark_previous(
    dir: &Dir,
    id: &RecordId,
    before: Option<&Ownership>,
    after: Option<&Ownership>,
) -> io::Result<()> {
    match before {
        Some(old) if after.is_none_or(|new| new.owner() != old.owner()) => {
            dir.unmark(old.owner(), id)
        }
        _ => Ok(()),
    }
}

fn remove(dir: &Dir, id: &RecordId) -> io::Result<()> {
    match fs::remove_file(dir.record_path(id)) {
        Ok(()) => dir.sync(),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

#[async_trait]
impl SessionStore for FileStore {
    async fn load(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let id = id.clone();
        self.blocking("loading a session file", move |dir| {
            match read_stored(dir, &id)? {
                Stored::Live(record) => Ok(Some(record)),
                Stored::Expired => {
                    remove_if_expired(dir, &id)?;
                    Ok(None)
                }
                Stored::Missing | Stored::Corrupt => Ok(None),
            }
        })
        .await
    }

    async fn create(&self, record: &Record) -> Result<(), StoreError> {
        let record = record.clone();
        self.blocking("creating a session file", move |dir| {
            if let Some(ownership) = record.ownership() {
                dir.mark(ownership.owner(), record.id())?;
            }
            let temp = dir.write_temp(&format::encode(&record))?;
            let path = dir.record_path(record.id());
            let outcome = match fs::hard_link(&temp, &path) {
                Ok(()) => dir.sync().map_err(Failure::from),
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                    // Something is there: a live record (duplicate), or an expired or broken
                    // leftover that this create replaces.
                    let _lock = dir.lock(record.id())?;
                    if live_record(dir, record.id())?.is_some() {
                        Err(StoreError::DuplicateId.into())
                    } else {
                        fs::rename(&temp, &path)
                            .and_then(|()| dir.sync())
                            .map_err(Failure::from)
                    }
                }
                Err(error) => Err(error.into()),
            };
            match fs::remove_file(&temp) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(%error, "could not remove a session temp file"),
            }
            outcome
        })
        .await
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let record = record.clone();
        let durable = self.durable_updates;
        self.blocking("updating a session file", move |dir| {
            let _lock = dir.lock(record.id())?;
            let Some(before) = live_record(dir, record.id())? else {
                return Err(StoreError::NotFound.into());
            };
            if let Some(ownership) = record.ownership() {
                dir.mark(ownership.owner(), record.id())?;
            }
            replace(dir, &record, durable)?;
            Ok(unmark_previous(
                dir,
                record.id(),
                before.ownership(),
                record.ownership(),
            )?)
        })
        .await
    }

    async fn touch(&self, id: &RecordId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let id = id.clone();
        let durable = self.durable_updates;
        self.blocking("touching a session file", move |dir| {
            let _lock = dir.lock(&id)?;
            let Some(mut record) = live_record(dir, &id)? else {
                return Err(StoreError::NotFound.into());
            };
            record.set_expires_at(expires_at);
            Ok(replace(dir, &record, durable)?)
        })
        .await
    }

    async fn delete(&self, id: &RecordId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.blocking("deleting a session file", move |dir| {
            let _lock = dir.lock(&id)?;
            let live = live_record(dir, &id)?.is_some();
            let owner = stored_owner(dir, &id)?;
            remove(dir, &id)?;
            if let Some(ownership) = owner {
                dir.unmark(ownership.owner(), &id)?;
            }
            Ok(live)
        })
        .await
    }

    async fn clear_expired(&self) -> Result<u64, StoreError> {
        self.blocking("clearing expired session files", move |dir| {
            let mut removed = 0;
            for entry in fs::read_dir(dir.path())? {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if let Some(id) = dir.record_id_of(&name) {
                    if entry.file_type()?.is_symlink() {
                        tracing::warn!(
                            target: "session::security",
                            file = %entry.path().display(),
                            "symlink at a session file path; left alone"
                        );
                        continue;
                    }
                    if remove_if_expired(dir, &id)? {
                        removed += 1;
                    }
                } else if dir.is_temp(&name) && entry.file_type()?.is_file() {
                    let age = entry
                        .metadata()?
                        .modified()
                        .ok()
                        .and_then(|at| SystemTime::now().duration_since(at).ok())
                        .unwrap_or_default();
                    if age > TEMP_GRACE {
                        match fs::remove_file(entry.path()) {
                            Ok(()) => {
                                tracing::debug!(file = %name, "removed a crashed write's temp file")
                            }
                            Err(error) if error.kind() == ErrorKind::NotFound => {}
                            Err(error) => return Err(error.into()),
                        }
                    }
                }
            }
            sweep_markers(dir)?;
            Ok(removed)
        })
        .await
    }

    fn owner_index(&self) -> Option<&dyn OwnerIndex> {
        Some(self)
    }
}

/// Removes owner markers whose record is gone, expired or now another owner's (left by a
/// crash between marker and record, or by a record removed by hand). A marker younger than
/// [`TEMP_GRACE`] may belong to a create still under way and is left alone.
fn sweep_markers(dir: &Dir) -> io::Result<()> {
    for (digest, markers) in dir.owner_markers()? {
        for (id, age) in markers {
            if age <= TEMP_GRACE {
                continue;
            }
            let _lock = dir.lock(&id)?;
            let owned = live_record(dir, &id)?
                .and_then(|record| {
                    record
                        .ownership()
                        .map(|o| dir.is_owner_dir(&digest, o.owner()))
                })
                .unwrap_or(false);
            if !owned {
                dir.unmark_digest(&digest, &id)?;
            }
        }
    }
    Ok(())
}

#[async_trait]
impl OwnerIndex for FileStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, StoreError> {
        let owner = owner.to_owned();
        self.blocking("listing an owner's session files", move |dir| {
            let mut sessions = Vec::new();
            for id in dir.marked(&owner)? {
                let Some(mut record) = live_record(dir, &id)? else {
                    continue;
                };
                match record.take_ownership() {
                    Some(ownership) if ownership.owner() == owner => sessions.push(OwnedSession {
                        id,
                        expires_at: record.expires_at(),
                        ownership,
                    }),
                    _ => {}
                }
            }
            session_core::owner::sort_listing(&mut sessions);
            Ok(sessions)
        })
        .await
    }

    async fn delete_sessions_of(
        &self,
        owner: &str,
        keep: Option<&RecordId>,
    ) -> Result<Vec<RecordId>, StoreError> {
        let owner = owner.to_owned();
        let keep = keep.cloned();
        self.blocking("deleting an owner's session files", move |dir| {
            let mut deleted = Vec::new();
            for id in dir.marked(&owner)? {
                if keep.as_ref() == Some(&id) {
                    continue;
                }
                let _lock = dir.lock(&id)?;
                let owned = stored_owner(dir, &id)?.is_some_and(|o| o.owner() == owner);
                if owned {
                    match fs::remove_file(dir.record_path(&id)) {
                        Ok(()) => deleted.push(id.clone()),
                        Err(error) if error.kind() == ErrorKind::NotFound => {}
                        Err(error) => return Err(error.into()),
                    }
                    dir.unmark(&owner, &id)?;
                }
            }
            if !deleted.is_empty() {
                dir.sync()?;
            }
            Ok(deleted)
        })
        .await
    }

    async fn touch_owned(
        &self,
        id: &RecordId,
        expires_at: OffsetDateTime,
        ownership: &Ownership,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let ownership = ownership.clone();
        let durable = self.durable_updates;
        self.blocking("touching a session file", move |dir| {
            let _lock = dir.lock(&id)?;
            let Some(mut record) = live_record(dir, &id)? else {
                return Err(StoreError::NotFound.into());
            };
            dir.mark(ownership.owner(), &id)?;
            let before = record.take_ownership();
            record.set_expires_at(expires_at);
            let record = record.with_ownership(Some(ownership));
            replace(dir, &record, durable)?;
            Ok(unmark_previous(
                dir,
                &id,
                before.as_ref(),
                record.ownership(),
            )?)
        })
        .await
    }
}
