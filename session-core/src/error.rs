//! Errors of stores and of the session handle. Both keep their sources.

use std::error::Error as StdError;

/// A boxed error source, as stores report their drivers' errors.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a [`SessionStore`](crate::SessionStore) operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `create` found a live record with the same id; the existing record is untouched.
    #[error("a live session record with this id already exists")]
    DuplicateId,
    /// `update` or `touch` found no live record with that id; nothing was written.
    #[error("no live session record with this id")]
    NotFound,
    /// The store's settings cannot work: a table name, key prefix, URL or directory that is
    /// wrong, found when the store is built. A mistake to fix, not an outage: alert on
    /// [`Backend`](Self::Backend), not on this.
    #[error("invalid session store configuration: {problem}")]
    Config {
        /// What is wrong and how to fix it.
        problem: String,
        /// The underlying error, where there is one (a URL parser's, an I/O error's).
        #[source]
        source: Option<BoxError>,
    },
    /// The backend failed (connection, I/O, timeout, bad stored data); the driver's error is
    /// kept as the source.
    #[error("session store backend failed: {context}")]
    Backend {
        /// What the store was doing, e.g. "loading a record".
        context: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// A configuration error: `problem` says what is wrong and how to fix it.
    pub fn config(problem: impl Into<String>) -> Self {
        Self::Config {
            problem: problem.into(),
            source: None,
        }
    }

    /// A configuration error with the error that revealed it.
    pub fn config_caused_by(problem: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Config {
            problem: problem.into(),
            source: Some(source.into()),
        }
    }

    /// Wraps a backend error with a short description of what the store was doing.
    pub fn backend(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            context,
            source: source.into(),
        }
    }
}

/// What an operation on a [`Session`](crate::Session) can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed; the store's error (and its source) is kept.
    #[error("session store failed")]
    Store(#[from] StoreError),
    /// The session was deleted (a logout in a concurrent request, for example) before this
    /// request could save it. Django's `SessionInterrupted`: answer with HTTP 400.
    #[error(
        "the session was deleted before the request completed; \
         the user may have logged out in a concurrent request"
    )]
    Interrupted,
    /// An earlier load failed, so the session will not write anything in this request.
    #[error("the session could not be loaded earlier in this request, so it will not be saved")]
    Poisoned,
    /// A value could not be converted to JSON.
    #[error("session value for {key:?} could not be serialized")]
    Serialize {
        /// The session key (entry name) being written.
        key: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The session's encoded data is larger than
    /// [`SessionConfig::max_payload_bytes`](crate::SessionConfig::max_payload_bytes); nothing
    /// was written, the stored record is as it was.
    #[error(
        "the session's data is {size} bytes, over the limit of {limit} bytes; nothing was saved"
    )]
    TooLarge {
        /// The encoded size, in bytes.
        size: usize,
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// An owner was set or asked for on a session whose store has no
    /// [`OwnerIndex`](crate::OwnerIndex) (a client-side engine, Django's own table, or a
    /// third-party store without one).
    #[error("this session store keeps no owner index, so sessions cannot have owners")]
    NoOwnerIndex,
    /// The owner id given to [`Session::set_owner`](crate::Session::set_owner) is not valid.
    #[error("invalid session owner: {0}")]
    InvalidOwner(String),
    /// A stored value does not deserialize into the requested type.
    #[error("session value for {key:?} does not have the requested type")]
    Deserialize {
        /// The entry name being read.
        key: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
}

/// The plain-text body of a 503 for a session store failure.
pub(crate) const UNAVAILABLE_BODY: &str = "The session store is unavailable. Please try again.";
/// The plain-text body of a 400 for a session deleted by a concurrent request.
pub(crate) const INTERRUPTED_BODY: &str = "The request's session was deleted before the request \
     completed. The user may have logged out in a concurrent request, for example.";
/// The plain-text body of a 500 for any other session failure.
pub(crate) const INTERNAL_BODY: &str = "The session could not be used because of a server error.";

impl SessionError {
    /// The HTTP status that answers this error: 503 when the store is unavailable (its
    /// backend failed, or an earlier load did), 400 when the session was interrupted by a
    /// concurrent logout (Django's `SessionInterrupted`), 500 for anything else.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Store(StoreError::Backend { .. }) | Self::Poisoned => 503,
            Self::Interrupted => 400,
            _ => 500,
        }
    }

    /// A short plain-text body for [`http_status`](Self::http_status), safe to show a client:
    /// it never carries the error's details (log those with [`error_chain`]).
    pub fn http_body(&self) -> &'static str {
        match self.http_status() {
            503 => UNAVAILABLE_BODY,
            400 => INTERRUPTED_BODY,
            _ => INTERNAL_BODY,
        }
    }
}

/// A [`SessionConfig`](crate::SessionConfig) that cannot work: found when the configuration
/// is checked at start-up, never on every response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session configuration: {0}")]
pub struct ConfigError(pub(crate) String);

/// Renders an error with its whole source chain, for logs: `outer: inner: innermost`.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_keep_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = SessionError::from(StoreError::backend("loading a record", io));
        let chain = error_chain(&error);
        assert_eq!(
            chain,
            "session store failed: session store backend failed: loading a record: refused"
        );
    }
}
