//! Django's login, read from Rust: the three entries `django.contrib.auth.login` writes, and
//! the check `django.contrib.auth.get_user` makes before it trusts them.
//!
//! ```no_run
//! use session_django::auth::{self, Verified};
//! use session_django::signing::Keys;
//!
//! # async fn handler(session: session_core::Session, keys: Keys) -> Result<(), session_core::SessionError> {
//! if let Some(login) = auth::DjangoLogin::read(&session).await? {
//!     // Look the user up by `login.user_id` in Django's `auth_user` table; its `password`
//!     // column is the hash Django's session hash is made from.
//!     let password_hash = "pbkdf2_sha256$…";
//!     match auth::verify(&session, &login, password_hash, &keys).await? {
//!         Verified::Current | Verified::Rotated => { /* logged in as login.user_id */ }
//!         Verified::Rejected => { /* logged out, as Django would */ }
//!     }
//! }
//! # Ok(()) }
//! ```

use serde_json::Value;
use session_core::{Session, SessionError};
use subtle::ConstantTimeEq;

use crate::signing::{Keys, salted_hmac};

/// `_auth_user_id`: the user's primary key, as text.
pub const SESSION_KEY: &str = "_auth_user_id";
/// `_auth_user_backend`: the dotted path of the authentication backend.
pub const BACKEND_SESSION_KEY: &str = "_auth_user_backend";
/// `_auth_user_hash`: the session auth hash, tied to the user's password hash.
pub const HASH_SESSION_KEY: &str = "_auth_user_hash";

/// The salt of Django's `AbstractBaseUser.get_session_auth_hash`.
const AUTH_HASH_SALT: &str = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";

/// A Django login found in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoLogin {
    /// `_auth_user_id`: the user's primary key as text (`"48213"`); a number is turned into
    /// text.
    pub user_id: String,
    /// `_auth_user_backend`, e.g. `django.contrib.auth.backends.ModelBackend`.
    pub backend: String,
    /// `_auth_user_hash`, if present.
    pub hash: Option<String>,
}

impl DjangoLogin {
    /// The login the session holds, if any: `None` without `_auth_user_id` and
    /// `_auth_user_backend` (Django's `get_user` sees an anonymous user then too).
    pub async fn read(session: &Session) -> Result<Option<Self>, SessionError> {
        let user_id = match session.get::<Value>(SESSION_KEY).await? {
            Some(Value::String(id)) => id,
            Some(Value::Number(id)) => id.to_string(),
            _ => return Ok(None),
        };
        let Some(backend) = session
            .get::<String>(BACKEND_SESSION_KEY)
            .await
            .ok()
            .flatten()
        else {
            return Ok(None);
        };
        let hash = session.get::<String>(HASH_SESSION_KEY).await.ok().flatten();
        Ok(Some(Self {
            user_id,
            backend,
            hash,
        }))
    }

    /// Which key, if any, made this login's hash from `password_hash` (the user's
    /// `password` column), compared in constant time as Django does.
    pub fn check_hash(&self, password_hash: &str, keys: &Keys) -> HashCheck {
        let Some(hash) = self.hash.as_deref().filter(|hash| !hash.is_empty()) else {
            return HashCheck::Mismatch;
        };
        let matches = |secret: &str| {
            bool::from(
                session_auth_hash(password_hash, secret)
                    .as_bytes()
                    .ct_eq(hash.as_bytes()),
            )
        };
        if matches(keys.current()) {
            HashCheck::Current
        } else if keys.fallbacks().iter().any(|secret| matches(secret)) {
            HashCheck::Fallback
        } else {
            HashCheck::Mismatch
        }
    }
}

/// What [`DjangoLogin::check_hash`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCheck {
    /// Made with `SECRET_KEY`.
    Current,
    /// Made with one of `SECRET_KEY_FALLBACKS`.
    Fallback,
    /// Made with no known key, or from another password hash (the password changed).
    Mismatch,
}

/// What [`verify`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The login holds.
    Current,
    /// The login held under a fallback key: the session got a new key and a hash made with
    /// the current secret, as Django's `get_user` does.
    Rotated,
    /// The hash did not verify: the session was flushed (logged out), as in Django.
    Rejected,
}

/// Django's `AbstractBaseUser.get_session_auth_hash()`: the hex HMAC-SHA256 of the
/// password hash, keyed from `secret`.
pub fn session_auth_hash(password_hash: &str, secret: &str) -> String {
    salted_hmac(AUTH_HASH_SALT, password_hash.as_bytes(), secret)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Checks a login as `django.contrib.auth.get_user` does, given the user's password hash,
/// and acts as it does: on a fallback key it cycles the session key and rewrites the hash
/// with the current secret; on a mismatch it flushes the session.
pub async fn verify(
    session: &Session,
    login: &DjangoLogin,
    password_hash: &str,
    keys: &Keys,
) -> Result<Verified, SessionError> {
    match login.check_hash(password_hash, keys) {
        HashCheck::Current => Ok(Verified::Current),
        HashCheck::Fallback => {
            session.cycle_key().await?;
            session
                .insert(
                    HASH_SESSION_KEY,
                    session_auth_hash(password_hash, keys.current()),
                )
                .await?;
            Ok(Verified::Rotated)
        }
        HashCheck::Mismatch => {
            session.flush().await?;
            Ok(Verified::Rejected)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_djangos() {
        // Django 5.2.19: salted_hmac(<salt>, "pbkdf2_sha256$1000000$salt$hash=",
        // secret="golden-secret-key", algorithm="sha256").hexdigest()
        assert_eq!(
            session_auth_hash("pbkdf2_sha256$1000000$salt$hash=", "golden-secret-key"),
            "49607bfa33448e9a79da7c511330d60d779ec30f0e64c40472a676934dc16c0b"
        );
        let login = DjangoLogin {
            user_id: "1".into(),
            backend: "b".into(),
            hash: Some(session_auth_hash("pw", "old")),
        };
        assert_eq!(
            login.check_hash("pw", &Keys::new("old")),
            HashCheck::Current
        );
        assert_eq!(
            login.check_hash("pw", &Keys::new("new").with_fallbacks(["old"])),
            HashCheck::Fallback
        );
        assert_eq!(
            login.check_hash("other", &Keys::new("old")),
            HashCheck::Mismatch
        );
        let no_hash = DjangoLogin {
            hash: None,
            ..login
        };
        assert_eq!(
            no_hash.check_hash("pw", &Keys::new("old")),
            HashCheck::Mismatch
        );
    }
}
