//! The dict API of [`Session`]: typed access through serde, Django's flags, the test-cookie
//! helpers.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Session;
use crate::SessionError;

/// The entry Django's test-cookie helpers use.
pub const TEST_COOKIE_NAME: &str = "testcookie";
/// The value Django's test-cookie helpers store.
pub const TEST_COOKIE_VALUE: &str = "worked";

impl Session {
    /// Runs `read` on the loaded entries. Marks the session accessed.
    async fn read<R>(
        &self,
        read: impl FnOnce(&Map<String, Value>) -> R,
    ) -> Result<R, SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        Ok(read(&state.loaded()?.entries))
    }

    /// Runs `change` on the loaded entries; it says whether it changed anything, which marks
    /// the session modified.
    async fn change<R>(
        &self,
        change: impl FnOnce(&mut Map<String, Value>) -> Result<(R, bool), SessionError>,
    ) -> Result<R, SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        let (result, changed) = change(&mut state.loaded()?.entries)?;
        if changed {
            state.mark_modified();
        }
        Ok(result)
    }

    /// The value of an entry, deserialized into `T`; `None` when absent.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match self.get_value(key).await? {
            None => Ok(None),
            Some(value) => from_value(key, &value).map(Some),
        }
    }

    /// The raw JSON value of an entry.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, SessionError> {
        self.read(|entries| entries.get(key).cloned()).await
    }

    /// Sets an entry. Writing a value equal to the current one does not mark the session
    /// modified.
    pub async fn insert(&self, key: &str, value: impl Serialize) -> Result<(), SessionError> {
        let value = to_value(key, &value)?;
        self.change(|entries| {
            let changed = entries.get(key) != Some(&value);
            if changed {
                entries.insert(key.to_owned(), value);
            }
            Ok(((), changed))
        })
        .await
    }

    /// Removes an entry and returns its raw value; removing a missing entry changes nothing.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        self.change(|entries| {
            let removed = entries.remove(key);
            let changed = removed.is_some();
            Ok((removed, changed))
        })
        .await
    }

    /// Removes an entry and returns it deserialized into `T`. A missing entry gives `None` and
    /// does not mark the session modified; a value of another type is an error and stays in
    /// the session.
    pub async fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.change(|entries| {
            let Some(value) = entries.get(key) else {
                return Ok((None, false));
            };
            let typed = from_value(key, value)?;
            entries.remove(key);
            Ok((Some(typed), true))
        })
        .await
    }

    /// Returns the entry's value, first inserting `default` if it is absent (Django's
    /// `setdefault`); only an insertion marks the session modified.
    pub async fn set_default<T>(&self, key: &str, default: T) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
    {
        let default_value = to_value(key, &default)?;
        self.change(|entries| match entries.get(key) {
            Some(value) => Ok((from_value(key, value)?, false)),
            None => {
                entries.insert(key.to_owned(), default_value);
                Ok((default, true))
            }
        })
        .await
    }

    /// Sets several entries at once (Django's `update`). Either all values serialize and are
    /// set, or none is.
    pub async fn update<I, K, V>(&self, entries: I) -> Result<(), SessionError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Serialize,
    {
        let values = entries
            .into_iter()
            .map(|(key, value)| {
                let key = key.into();
                let value = to_value(&key, &value)?;
                Ok((key, value))
            })
            .collect::<Result<Vec<_>, SessionError>>()?;
        self.change(|entries| {
            let mut changed = false;
            for (key, value) in values {
                if entries.get(&key) != Some(&value) {
                    entries.insert(key, value);
                    changed = true;
                }
            }
            Ok(((), changed))
        })
        .await
    }

    /// Whether the session holds an entry under `key`.
    pub async fn contains_key(&self, key: &str) -> Result<bool, SessionError> {
        self.read(|entries| entries.contains_key(key)).await
    }

    /// The entry names (in no particular order: databases reorder JSON keys).
    pub async fn keys(&self) -> Result<Vec<String>, SessionError> {
        self.read(|entries| entries.keys().cloned().collect()).await
    }

    /// The raw entry values.
    pub async fn values(&self) -> Result<Vec<Value>, SessionError> {
        self.read(|entries| entries.values().cloned().collect())
            .await
    }

    /// The entries as name and raw value.
    pub async fn entries(&self) -> Result<Vec<(String, Value)>, SessionError> {
        self.read(|entries| {
            entries
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .await
    }

    /// How many entries the session holds.
    pub async fn len(&self) -> Result<usize, SessionError> {
        self.read(Map::len).await
    }

    /// Whether the session holds no entries.
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        self.read(Map::is_empty).await
    }

    /// Removes every entry; the key and the expiry setting stay. Clearing an empty session
    /// changes nothing. Use [`flush`](Self::flush) to log out.
    pub async fn clear(&self) -> Result<(), SessionError> {
        self.change(|entries| {
            let changed = !entries.is_empty();
            entries.clear();
            Ok(((), changed))
        })
        .await
    }

    /// Stores Django's test value, to check on the next request that the client keeps cookies.
    pub async fn set_test_cookie(&self) -> Result<(), SessionError> {
        self.insert(TEST_COOKIE_NAME, TEST_COOKIE_VALUE).await
    }

    /// Whether the test value set by [`set_test_cookie`](Self::set_test_cookie) came back.
    pub async fn test_cookie_worked(&self) -> Result<bool, SessionError> {
        let value = self.get_value(TEST_COOKIE_NAME).await?;
        Ok(value.as_ref().and_then(Value::as_str) == Some(TEST_COOKIE_VALUE))
    }

    /// Removes the test value.
    pub async fn delete_test_cookie(&self) -> Result<(), SessionError> {
        self.remove(TEST_COOKIE_NAME).await.map(drop)
    }
}

fn to_value(key: &str, value: &impl Serialize) -> Result<Value, SessionError> {
    serde_json::to_value(value).map_err(|source| SessionError::Serialize {
        key: key.to_owned(),
        source,
    })
}

fn from_value<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, SessionError> {
    T::deserialize(value).map_err(|source| SessionError::Deserialize {
        key: key.to_owned(),
        source,
    })
}
