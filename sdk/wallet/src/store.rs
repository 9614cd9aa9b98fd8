//! The wallet's embedded ACID store: one redb file per wallet.
//!
//! [`WalletStore`] is a thin typed layer over redb with a fixed set of named
//! tables ([`Table`]), every one mapping `&str` keys to byte values. Reads go
//! through [`WalletStore::get`] and [`WalletStore::scan_prefix`]; every write
//! goes through [`WalletStore::write`], which runs a closure inside ONE redb
//! write transaction and commits only if the closure returns `Ok`. Commits
//! use redb's default immediate durability (fsync before `commit` returns),
//! so a peer killed with SIGKILL after a write returned loses nothing.
//!
//! ```
//! use sphere_sdk::store::{Table, WalletStore};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = WalletStore::open(dir.path())?;
//! store.write(|batch| {
//!     batch.put(Table::Meta, "name", b"alice")?;
//!     batch.put_json(Table::Meta, "version", &3u32)
//! })?;
//! assert_eq!(store.get(Table::Meta, "name")?, Some(b"alice".to_vec()));
//! assert_eq!(store.get_json::<u32>(Table::Meta, "version")?, Some(3));
//! # Ok::<(), sphere_sdk::store::StoreError>(())
//! ```

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};

use crate::perf;

/// The file name of a wallet's store inside its directory.
pub const STORE_FILE: &str = "wallet.redb";

/// The store's named tables; each maps `&str` keys to byte values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Profile op-log entries: CID string -> dag-cbor block bytes.
    Entries,
    /// The wallet's tokens.
    Tokens,
    /// Small wallet metadata (identity, pointer version, settings).
    Meta,
    /// Incoming transfers not yet acknowledged. (Outgoing payments keep
    /// their outbox in the profile's op-log, `alice.outbox.<id>`, so that
    /// every device sees them: there is no local outbox table.)
    Inbox,
}

impl Table {
    /// Every table, in a fixed order (all are created when a store opens).
    pub const ALL: [Table; 4] = [Table::Entries, Table::Tokens, Table::Meta, Table::Inbox];

    /// The table's name inside the redb file.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Entries => "entries",
            Table::Tokens => "tokens",
            Table::Meta => "meta",
            Table::Inbox => "inbox",
        }
    }

    const fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a store operation failed; every variant names the store file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The wallet directory could not be created.
    #[error("cannot create wallet directory `{path}`: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// redb refused an operation.
    #[error("cannot {op} in wallet store `{path}`: {source}")]
    Db {
        /// The store file.
        path: PathBuf,
        /// What was being done (`open`, `read meta/alice`, `commit`...).
        op: String,
        /// What redb said (boxed to keep the error small).
        source: Box<redb::Error>,
    },
    /// A JSON value could not be encoded or decoded.
    #[error("bad json at `{table}/{key}` in wallet store `{path}`: {source}")]
    Json {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: Table,
        /// The key.
        key: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// A write closure gave up; nothing it wrote was committed.
    #[error("write to wallet store `{path}` aborted: {reason}")]
    Aborted {
        /// The store file.
        path: PathBuf,
        /// Why the caller gave up.
        reason: String,
    },
}

fn db_error(path: &Path, op: impl Into<String>, source: impl Into<redb::Error>) -> StoreError {
    StoreError::Db {
        path: path.to_owned(),
        op: op.into(),
        source: Box::new(source.into()),
    }
}

struct Inner {
    db: Database,
    path: PathBuf,
}

/// A wallet's store; cheap to clone (all clones share one open database).
#[derive(Clone)]
pub struct WalletStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for WalletStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl WalletStore {
    /// Opens (creating if needed) `<dir>/wallet.redb`, creating `dir` too.
    pub fn open(dir: &Path) -> Result<WalletStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        let _wait = perf::wait(perf::Wait::Store);
        let db = Database::create(&path).map_err(|e| db_error(&path, "open", e))?;
        // Creating every table up front means readers never meet a missing
        // table, so a fresh store reads as empty rather than as an error.
        let txn = db
            .begin_write()
            .map_err(|e| db_error(&path, "begin write", e))?;
        for table in Table::ALL {
            txn.open_table(table.definition())
                .map_err(|e| db_error(&path, format!("create table {table}"), e))?;
        }
        txn.commit().map_err(|e| db_error(&path, "commit", e))?;
        Ok(WalletStore {
            inner: Arc::new(Inner { db, path }),
        })
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The value at `table/key`, if any.
    pub fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path();
        let op = || format!("read {table}/{key}");
        let _wait = perf::wait(perf::Wait::Store);
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|e| db_error(path, op(), e))?;
        let t = txn
            .open_table(table.definition())
            .map_err(|e| db_error(path, op(), e))?;
        let value = t.get(key).map_err(|e| db_error(path, op(), e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// The value at `table/key` decoded from JSON, if any.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get(table, key)?
            .map(|bytes| decode_json(self.path(), table, key, &bytes))
            .transpose()
    }

    /// Every `(key, value)` of `table` whose key starts with `prefix`,
    /// sorted by key (bytewise).
    pub fn scan_prefix(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let path = self.path();
        let op = || format!("scan {table}/{prefix}*");
        let _wait = perf::wait(perf::Wait::Store);
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|e| db_error(path, op(), e))?;
        let t = txn
            .open_table(table.definition())
            .map_err(|e| db_error(path, op(), e))?;
        collect_prefix(&t, prefix).map_err(|e| db_error(path, op(), e))
    }

    /// Runs `f` in one write transaction, committed only if `f` returns
    /// `Ok`; on `Err` (or a panic) nothing `f` wrote is kept.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut WriteBatch<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(f)
    }

    /// [`WalletStore::write`] for closures with their own error type, so a
    /// caller can abort a transaction with a domain error.
    pub fn write_with<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteBatch<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let path = self.path();
        let _wait = perf::wait(perf::Wait::Store);
        let txn = self
            .inner
            .db
            .begin_write()
            .map_err(|e| db_error(path, "begin write", e))?;
        let mut batch = WriteBatch { txn, path };
        match f(&mut batch) {
            Ok(value) => {
                batch
                    .txn
                    .commit()
                    .map_err(|e| db_error(path, "commit", e))?;
                Ok(value)
            }
            Err(e) => {
                // The closure's error is the one worth reporting; a failed
                // abort leaves nothing committed either way.
                let _ = batch.txn.abort();
                Err(e)
            }
        }
    }
}

/// The writes (and reads) of one open write transaction; see
/// [`WalletStore::write`].
pub struct WriteBatch<'s> {
    txn: WriteTransaction,
    path: &'s Path,
}

impl WriteBatch<'_> {
    /// Sets `table/key` to `value`.
    pub fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let op = || format!("write {table}/{key}");
        let mut t = self
            .txn
            .open_table(table.definition())
            .map_err(|e| db_error(self.path, op(), e))?;
        t.insert(key, value)
            .map_err(|e| db_error(self.path, op(), e))?;
        Ok(())
    }

    /// Sets `table/key` to `value` encoded as JSON.
    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        table: Table,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Json {
            path: self.path.to_owned(),
            table,
            key: key.to_owned(),
            source,
        })?;
        self.put(table, key, &bytes)
    }

    /// Removes `table/key`; returns whether it was there.
    pub fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        let op = || format!("delete {table}/{key}");
        let mut t = self
            .txn
            .open_table(table.definition())
            .map_err(|e| db_error(self.path, op(), e))?;
        let removed = t.remove(key).map_err(|e| db_error(self.path, op(), e))?;
        Ok(removed.is_some())
    }

    /// The value at `table/key` as this transaction sees it (its own
    /// uncommitted writes included).
    pub fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let op = || format!("read {table}/{key}");
        let t = self
            .txn
            .open_table(table.definition())
            .map_err(|e| db_error(self.path, op(), e))?;
        let value = t.get(key).map_err(|e| db_error(self.path, op(), e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// The value at `table/key` decoded from JSON, as this transaction sees it.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get(table, key)?
            .map(|bytes| decode_json(self.path, table, key, &bytes))
            .transpose()
    }

    /// Every `(key, value)` under `prefix`, sorted, as this transaction sees it.
    pub fn scan_prefix(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let op = || format!("scan {table}/{prefix}*");
        let t = self
            .txn
            .open_table(table.definition())
            .map_err(|e| db_error(self.path, op(), e))?;
        collect_prefix(&t, prefix).map_err(|e| db_error(self.path, op(), e))
    }

    /// An error that aborts the transaction with `reason` when returned
    /// from the write closure.
    pub fn abort(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Aborted {
            path: self.path.to_owned(),
            reason: reason.into(),
        }
    }
}

fn collect_prefix(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
) -> Result<Vec<(String, Vec<u8>)>, redb::StorageError> {
    let mut out = Vec::new();
    // Keys sort bytewise, so everything under the prefix is one contiguous
    // run starting at the prefix itself.
    for item in table.range(prefix..)? {
        let (key, value) = item?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key.to_owned(), value.value().to_vec()));
    }
    Ok(out)
}

fn decode_json<T: DeserializeOwned>(
    path: &Path,
    table: Table,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Json {
        path: path.to_owned(),
        table,
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_temp() -> (tempfile::TempDir, WalletStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = WalletStore::open(&dir.path().join("w")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_closure_returning_err_leaves_nothing_written() {
        let (_dir, store) = open_temp();
        store.write(|b| b.put(Table::Meta, "kept", b"1")).unwrap();
        let err = store
            .write(|b| {
                b.put(Table::Meta, "lost", b"2")?;
                b.delete(Table::Meta, "kept")?;
                assert_eq!(b.get(Table::Meta, "lost")?, Some(b"2".to_vec()));
                Err::<(), _>(b.abort("changed my mind"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("changed my mind"), "{err}");
        assert!(err.to_string().contains(STORE_FILE), "{err}");
        assert_eq!(store.get(Table::Meta, "lost").unwrap(), None);
        assert_eq!(store.get(Table::Meta, "kept").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn write_with_carries_the_callers_error_type() {
        #[derive(Debug)]
        enum Mine {
            Store,
            Nope,
        }
        impl From<StoreError> for Mine {
            fn from(_: StoreError) -> Self {
                Mine::Store
            }
        }
        let (_dir, store) = open_temp();
        let result = store.write_with(|b| {
            b.put(Table::Tokens, "t", b"x")?;
            Err::<(), _>(Mine::Nope)
        });
        assert!(matches!(result, Err(Mine::Nope)));
        assert_eq!(store.get(Table::Tokens, "t").unwrap(), None);
    }

    #[test]
    fn data_persists_across_reopen_and_tables_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = WalletStore::open(dir.path()).unwrap();
            let clone = store.clone();
            clone
                .write(|b| {
                    b.put(Table::Tokens, "k", b"token")?;
                    b.put_json(Table::Meta, "k", &vec!["a", "b"])
                })
                .unwrap();
        }
        let store = WalletStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Table::Tokens, "k").unwrap(),
            Some(b"token".to_vec())
        );
        assert_eq!(
            store.get_json::<Vec<String>>(Table::Meta, "k").unwrap(),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(store.get(Table::Inbox, "k").unwrap(), None);
    }

    #[test]
    fn prefix_scans_are_sorted_and_stop_at_the_prefix() {
        let (_dir, store) = open_temp();
        store
            .write(|b| {
                for key in ["a.2", "a.1", "a", "a.10", "ab", "b.1", "a/"] {
                    b.put(Table::Meta, key, key.as_bytes())?;
                }
                Ok(())
            })
            .unwrap();
        let keys = |items: Vec<(String, Vec<u8>)>| -> Vec<String> {
            items.into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(
            keys(store.scan_prefix(Table::Meta, "a.").unwrap()),
            ["a.1", "a.10", "a.2"]
        );
        assert_eq!(store.scan_prefix(Table::Meta, "b.").unwrap()[0].1, b"b.1");
        assert!(store.scan_prefix(Table::Meta, "c").unwrap().is_empty());
        assert_eq!(store.scan_prefix(Table::Meta, "").unwrap().len(), 7);
        let inside = store
            .write(|b| {
                b.delete(Table::Meta, "a.1")?;
                b.scan_prefix(Table::Meta, "a.")
            })
            .unwrap();
        assert_eq!(keys(inside), ["a.10", "a.2"]);
    }

    #[test]
    fn bad_json_names_table_key_and_file() {
        let (_dir, store) = open_temp();
        store
            .write(|b| b.put(Table::Meta, "v", b"{not json"))
            .unwrap();
        let err = store.get_json::<u32>(Table::Meta, "v").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("meta/v") && text.contains(STORE_FILE),
            "{text}"
        );
    }

    #[test]
    fn a_second_open_of_a_live_store_fails_naming_the_file() {
        let (dir, _store) = open_temp();
        let err = WalletStore::open(&dir.path().join("w")).unwrap_err();
        assert!(err.to_string().contains("open"), "{err}");
        assert!(err.to_string().contains(STORE_FILE), "{err}");
    }

    const CRASH_DIR_ENV: &str = "SPHERE_STORE_CRASH_CHILD_DIR";

    /// The child half of the crash test: commits, then dies without running
    /// any destructor, as SIGKILL would leave it.
    #[test]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
            return;
        };
        let store = WalletStore::open(Path::new(&dir)).unwrap();
        store
            .write(|b| b.put(Table::Tokens, "committed", b"yes"))
            .unwrap();
        let _ = store.write(|b| {
            b.put(Table::Tokens, "uncommitted", b"no")?;
            // Dies inside an open write transaction.
            std::process::abort();
            #[allow(unreachable_code)]
            Ok(())
        });
    }

    #[test]
    fn committed_data_survives_a_killed_process() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["store::tests::crash_child", "--exact", "--test-threads=1"])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child should have aborted");
        let store = WalletStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Table::Tokens, "committed").unwrap(),
            Some(b"yes".to_vec())
        );
        assert_eq!(store.get(Table::Tokens, "uncommitted").unwrap(), None);
    }
}
