//! Group commit for `SqliteStore`: writes that queue behind one another run in one
//! transaction, so they share one commit and one fsync of the log.
//!
//! SQLite takes one write lock for the whole database, so writes from one store go one at a
//! time anyway. Each caller queues its write and waits for the store's writer lock; whoever
//! gets it runs every write queued by then, in order, in one `BEGIN IMMEDIATE … COMMIT`, and
//! answers each caller only after the commit, so a caller never hears of a write that is not
//! on disk. A write whose caller is gone (its future dropped) before its turn is skipped. If
//! the shared transaction fails (a full disk, a lost lock), it is rolled back and each write
//! runs again on its own, so one write's failure is never another's.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};

use session_core::StoreError;
use sqlx::SqliteConnection;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{Mutex, oneshot};

use crate::error::DbServer;

/// What a write's statements return: a driver error (which makes a shared transaction fall
/// back to one write per transaction), or the write's own answer (`NotFound`, say).
pub(crate) type Step<'c, T> =
    Pin<Box<dyn Future<Output = Result<Result<T, StoreError>, sqlx::Error>> + Send + 'c>>;

/// The most writes one transaction takes, so the first of them waits for a bounded commit.
const MAX_GROUP: usize = 256;

/// The writes of one SQLite store (and its clones), grouped into shared transactions.
pub(crate) struct WriteQueue {
    pool: SqlitePool,
    server: DbServer,
    /// Writes waiting for the writer lock, oldest first.
    pending: SyncMutex<Vec<Box<dyn Job>>>,
    /// Held while a group runs.
    writer: Arc<Mutex<()>>,
}

impl fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteQueue").finish_non_exhaustive()
    }
}

impl WriteQueue {
    /// The queue of writes to `pool`, whose failures name `server`.
    pub(crate) fn new(pool: SqlitePool, server: DbServer) -> Self {
        Self {
            pool,
            server,
            pending: SyncMutex::new(Vec::new()),
            writer: Arc::new(Mutex::new(())),
        }
    }

    /// Runs `statements` on `data` in the next group and answers once it is committed. The
    /// statements may run twice (the second time on their own, if the group failed), so they
    /// must only read `data`.
    pub(crate) async fn write<D, T, F>(
        self: &Arc<Self>,
        context: &'static str,
        data: D,
        statements: F,
    ) -> Result<T, StoreError>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(&'c D, &'c mut SqliteConnection) -> Step<'c, T> + Send + Sync + 'static,
    {
        let (reply, mut answer) = oneshot::channel();
        self.queued().push(Box::new(Write {
            data,
            statements,
            context,
            answer: None,
            reply,
        }));
        // An earlier group may take this write along while this caller waits for the lock;
        // then the answer comes first and the caller leaves the lock's queue, so the next
        // holder finds every write queued meanwhile, not one.
        let writing = tokio::select! {
            biased;
            answer = &mut answer => return Self::answered(context, answer),
            writing = Arc::clone(&self.writer).lock_owned() => writing,
        };
        let group = self.next_group();
        if !group.is_empty() {
            // In a task of its own, so that dropping this caller's future cannot cut short
            // the other callers' writes.
            let queue = Arc::clone(self);
            let running = tokio::spawn(async move {
                queue.run(group).await;
                drop(writing);
            });
            if let Err(error) = running.await {
                tracing::warn!(%error, "a group of SQLite session writes did not finish");
            }
        }
        Self::answered(context, answer.await)
    }

    fn answered<T>(
        context: &'static str,
        answer: Result<Result<T, StoreError>, oneshot::error::RecvError>,
    ) -> Result<T, StoreError> {
        answer.unwrap_or_else(|_| {
            Err(StoreError::backend(
                context,
                "the write was abandoned before it finished",
            ))
        })
    }

    /// The oldest queued writes, at most [`MAX_GROUP`]; the rest wait for the next group.
    fn next_group(&self) -> Vec<Box<dyn Job>> {
        let mut queued = self.queued();
        let taken = queued.len().min(MAX_GROUP);
        queued.drain(..taken).collect()
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn Job>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `group` in one transaction, or each write on its own if that fails, and answers.
    async fn run(&self, group: Vec<Box<dyn Job>>) {
        let mut group: Vec<_> = group.into_iter().filter(|job| !job.abandoned()).collect();
        if group.len() > 1 {
            match self.together(&mut group).await {
                Ok(()) => {
                    group.into_iter().for_each(|job| job.answer());
                    return;
                }
                Err(error) => tracing::warn!(
                    %error,
                    writes = group.len(),
                    "a shared SQLite transaction of session writes failed; \
                     running each write on its own"
                ),
            }
        }
        let bound = self.pool.options().get_acquire_timeout();
        for mut job in group {
            match self.alone(&mut *job).await {
                Ok(()) => job.answer(),
                Err(error) => {
                    let error = self.server.error(job.context(), bound, error);
                    job.fail(error);
                }
            }
        }
    }

    async fn together(&self, group: &mut [Box<dyn Job>]) -> Result<(), sqlx::Error> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for job in group.iter_mut() {
            job.run(&mut transaction).await?;
        }
        transaction.commit().await
    }

    async fn alone(&self, job: &mut dyn Job) -> Result<(), sqlx::Error> {
        let mut connection = self.pool.acquire().await?;
        job.run(&mut connection).await
    }
}

/// One queued write, whatever it answers.
trait Job: Send {
    /// Whether its caller is gone.
    fn abandoned(&self) -> bool;
    /// What a failure is named after.
    fn context(&self) -> &'static str;
    /// Runs its statements on `connection`, keeping their answer for [`Job::answer`].
    fn run<'c>(
        &'c mut self,
        connection: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;
    /// Sends the kept answer, after the commit.
    fn answer(self: Box<Self>);
    /// Sends `error` instead.
    fn fail(self: Box<Self>, error: StoreError);
}

struct Write<D, T, F> {
    data: D,
    statements: F,
    context: &'static str,
    answer: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<D, T, F> Job for Write<D, T, F>
where
    D: Send + Sync + 'static,
    T: Send + 'static,
    F: for<'c> Fn(&'c D, &'c mut SqliteConnection) -> Step<'c, T> + Send + Sync + 'static,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn context(&self) -> &'static str {
        self.context
    }

    fn run<'c>(
        &'c mut self,
        connection: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>> {
        let Self {
            data,
            statements,
            answer,
            ..
        } = self;
        Box::pin(async move {
            *answer = Some(statements(data, connection).await?);
            Ok(())
        })
    }

    fn answer(self: Box<Self>) {
        let Self {
            context,
            answer,
            reply,
            ..
        } = *self;
        let answer = answer.unwrap_or_else(|| {
            Err(StoreError::backend(
                context,
                "the write's statements did not run",
            ))
        });
        // A caller that left no longer wants the answer.
        let _ = reply.send(answer);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}
