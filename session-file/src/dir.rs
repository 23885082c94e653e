//! The session directory: record paths, crash-safe writes, lock stripes. Blocking calls only;
//! the store runs them off the runtime's other tasks (see `FileStore::blocking`).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::RecordId;

/// Lock files per directory: records are spread over them by the first two hex digits of
/// their id, so unrelated sessions rarely wait for each other.
const LOCK_STRIPES: usize = 256;

/// A session directory and the naming rules inside it.
#[derive(Debug)]
pub(crate) struct Dir {
    path: PathBuf,
    prefix: String,
    temp_prefix: String,
    /// `temp_prefix` and this process's id: the start of the temp files it writes.
    own_temp_prefix: String,
    lock_dir: PathBuf,
    /// `<dir>/.<prefix>.owners`: one directory per owner (named by the owner's digest)
    /// holding an empty marker file per record of that owner.
    owners_dir: PathBuf,
    counter: AtomicU64,
    /// The effective user, who must own the directory and every record file; `None` when
    /// the store was told to trust files of other users (a directory shared on purpose).
    owner: Option<u32>,
}

/// An owner marker: the record id it names and how old it is.
pub(crate) type Marker = (RecordId, std::time::Duration);

/// Permission bits that let the group or others write.
const GROUP_OR_OTHER_WRITE: u32 = 0o022;

impl Dir {
    /// Opens (creating it with mode 0700 if missing) a session directory, and checks that it
    /// is a directory we can write to.
    ///
    /// Unless `shared` is set, the directory must belong to the effective user and must not be
    /// writable by group or others: anyone who can write there can plant a record file and
    /// log in as anyone.
    pub(crate) fn open(path: &Path, prefix: &str, shared: bool) -> io::Result<Self> {
        let owner = rustix::process::geteuid().as_raw();
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                if !shared {
                    check_private(path, &meta, owner)?;
                }
            }
            Ok(_) => {
                return Err(io::Error::new(
                    ErrorKind::NotADirectory,
                    format!("{} exists and is not a directory", path.display()),
                ));
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                DirBuilder::new().recursive(true).mode(0o700).create(path)?;
            }
            Err(error) => return Err(error),
        }
        let dir = Self {
            path: path.to_path_buf(),
            prefix: prefix.to_owned(),
            // Starts with a dot, which no record name (prefix + hex id) ever does.
            temp_prefix: format!(".{prefix}.tmp."),
            // The process id once, not a system call per write.
            own_temp_prefix: format!(".{prefix}.tmp.{}.", std::process::id()),
            lock_dir: path.join(format!(".{prefix}.locks")),
            owners_dir: path.join(format!(".{prefix}.owners")),
            counter: AtomicU64::new(0),
            owner: (!shared).then_some(owner),
        };
        for sub in [&dir.lock_dir, &dir.owners_dir] {
            match DirBuilder::new().mode(0o700).create(sub) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
                Err(error) => return Err(not_writable(path, error)),
            }
        }
        let probe = dir
            .write_temp(b"")
            .map_err(|error| not_writable(path, error))?;
        fs::remove_file(probe)?;
        Ok(dir)
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file of a record: `<dir>/<prefix><64 hex>`.
    pub(crate) fn record_path(&self, id: &RecordId) -> PathBuf {
        self.path.join(format!("{}{}", self.prefix, id.as_str()))
    }

    /// The record id a file name stands for, if it is one of this store's record files.
    pub(crate) fn record_id_of(&self, file_name: &str) -> Option<RecordId> {
        RecordId::parse(file_name.strip_prefix(&self.prefix)?)
    }

    /// Whether a file name is one of this store's temp files.
    pub(crate) fn is_temp(&self, file_name: &str) -> bool {
        file_name.starts_with(&self.temp_prefix)
    }

    /// Reads a record file without following symlinks; `None` when there is none.
    pub(crate) fn read(&self, id: &RecordId) -> io::Result<Option<Vec<u8>>> {
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.record_path(id))
        {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(refuse_symlink(error)),
        };
        let meta = file.metadata()?;
        if let Some(owner) = self.owner
            && (meta.uid() != owner || meta.mode() & GROUP_OR_OTHER_WRITE != 0)
        {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                ForeignFile {
                    uid: meta.uid(),
                    mode: meta.mode() & 0o7777,
                },
            ));
        }
        // Sized from the metadata already at hand: `File::read_to_end` would ask for the
        // size and position again (two more system calls per read).
        let expected = usize::try_from(meta.len()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(expected.saturating_add(1));
        io::Read::by_ref(&mut file)
            .take(u64::MAX)
            .read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    /// Writes `bytes` to a fresh temp file (mode 0600) and fsyncs it; returns its path.
    pub(crate) fn write_temp(&self, bytes: &[u8]) -> io::Result<PathBuf> {
        loop {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = self
                .path
                .join(format!("{}{n}.{nanos}", self.own_temp_prefix));
            match self.create_temp(&path, bytes) {
                Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
                other => return other.map(|()| path),
            }
        }
    }

    /// Creates `path` (it must not exist), writes `bytes` and fsyncs them; removes the file
    /// again when writing fails.
    fn create_temp(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        // `fdatasync`: the bytes and what is needed to read them back (size, blocks), not the
        // timestamps, are on disk before the file is linked or renamed into place.
        let written = file.write_all(bytes).and_then(|()| file.sync_data());
        if written.is_err() {
            let _ = fs::remove_file(path);
        }
        written
    }

    /// Makes renames, links and removals in the directory durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    /// The marker directory of `owner`.
    fn owner_dir(&self, owner: &str) -> PathBuf {
        self.owners_dir
            .join(session_core::owner::owner_digest(owner))
    }

    /// Whether a marker directory name is `owner`'s.
    pub(crate) fn is_owner_dir(&self, name: &str, owner: &str) -> bool {
        name == session_core::owner::owner_digest(owner)
    }

    /// Makes sure `id` is marked as one of `owner`'s records, durably (the marker and its
    /// directory are fsynced when created), before the record itself is written: a record
    /// never exists unlisted, so ending an owner's sessions always finds it.
    pub(crate) fn mark(&self, owner: &str, id: &RecordId) -> io::Result<()> {
        let owner_dir = self.owner_dir(owner);
        let marker = owner_dir.join(id.as_str());
        if fs::symlink_metadata(&marker).is_ok() {
            return Ok(());
        }
        for _ in 0..3 {
            match DirBuilder::new().mode(0o700).create(&owner_dir) {
                Ok(()) => File::open(&self.owners_dir)?.sync_all()?,
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&marker);
            match created {
                Ok(_) => return File::open(&owner_dir)?.sync_all(),
                Err(error) if error.kind() == ErrorKind::AlreadyExists => return Ok(()),
                // A cleanup removed the emptied directory in between: make it again.
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::other(
            "the owner's marker directory keeps disappearing",
        ))
    }

    /// Removes `id`'s marker from `owner`'s directory (and the directory once empty).
    pub(crate) fn unmark(&self, owner: &str, id: &RecordId) -> io::Result<()> {
        self.unmark_in(&self.owner_dir(owner), id)
    }

    fn unmark_in(&self, owner_dir: &Path, id: &RecordId) -> io::Result<()> {
        match fs::remove_file(owner_dir.join(id.as_str())) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        }
        // Fails harmlessly while other markers remain (or a marker is being made).
        let _ = fs::remove_dir(owner_dir);
        Ok(())
    }

    /// The record ids marked for `owner`.
    pub(crate) fn marked(&self, owner: &str) -> io::Result<Vec<RecordId>> {
        Ok(self
            .markers_in(&self.owner_dir(owner))?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// The markers in one owner directory, with their age.
    fn markers_in(&self, owner_dir: &Path) -> io::Result<Vec<Marker>> {
        let entries = match fs::read_dir(owner_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut markers = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().and_then(RecordId::parse) else {
                continue;
            };
            let age = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
                .unwrap_or_default();
            markers.push((id, age));
        }
        Ok(markers)
    }

    /// Every owner directory: its name (the owner's digest) and its markers with their age.
    pub(crate) fn owner_markers(&self) -> io::Result<Vec<(String, Vec<Marker>)>> {
        let mut owners = Vec::new();
        for entry in fs::read_dir(&self.owners_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            owners.push((name.clone(), self.markers_in(&entry.path())?));
        }
        Ok(owners)
    }

    /// Removes a marker found by [`owner_markers`](Self::owner_markers).
    pub(crate) fn unmark_digest(&self, digest: &str, id: &RecordId) -> io::Result<()> {
        self.unmark_in(&self.owners_dir.join(digest), id)
    }

    /// Takes the exclusive lock that guards check-and-replace of `id`, across threads and
    /// processes; released when the returned file is dropped.
    pub(crate) fn lock(&self, id: &RecordId) -> io::Result<File> {
        let stripe = usize::from_str_radix(id.as_str().get(..2).unwrap_or("00"), 16).unwrap_or(0)
            % LOCK_STRIPES;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.lock_dir.join(format!("{stripe:02x}")))
            .map_err(refuse_symlink)?;
        file.lock()?;
        Ok(file)
    }
}

/// Refuses a session directory another user owns or may write to.
fn check_private(path: &Path, meta: &fs::Metadata, owner: u32) -> io::Result<()> {
    let problem = if meta.uid() != owner {
        format!(
            "is owned by uid {}, not by this process's user (uid {owner}); chown it",
            meta.uid()
        )
    } else if meta.mode() & GROUP_OR_OTHER_WRITE != 0 {
        format!(
            "is writable by group or others (mode {:o}); run `chmod go-w` on it",
            meta.mode() & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(io::Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "session directory {} {problem}: otherwise another local user could plant a \
             session file and log in as anyone (FileOptions::allow_shared_directory opts out)",
            path.display()
        ),
    ))
}

/// A record file that another user owns or may write to: it could be a planted session.
#[derive(Debug)]
struct ForeignFile {
    uid: u32,
    mode: u32,
}

impl std::fmt::Display for ForeignFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refusing a session file owned by uid {} with mode {:o}: only files of this \
             process's user, writable by it alone, are trusted",
            self.uid, self.mode
        )
    }
}

impl std::error::Error for ForeignFile {}

fn not_writable(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!(
            "session directory {} is not writable: {error}",
            path.display()
        ),
    )
}

/// A symlink found where a session file or lock file belongs.
#[derive(Debug)]
struct SymlinkRefused;

impl std::fmt::Display for SymlinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refusing to follow a symlink at a session file path")
    }
}

impl std::error::Error for SymlinkRefused {}

/// `O_NOFOLLOW` on a symlink fails with `ELOOP`: say what happened.
fn refuse_symlink(error: io::Error) -> io::Error {
    if error.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(ErrorKind::InvalidData, SymlinkRefused)
    } else {
        error
    }
}

/// Whether `error` is a refused symlink or a refused file of another user: a record path
/// holding something this store does not trust.
pub(crate) fn is_refusal(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<SymlinkRefused>() || inner.is::<ForeignFile>())
}
