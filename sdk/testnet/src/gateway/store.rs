//! The gateway's block store: verified blocks by CID, in memory or on disk.
//!
//! [`BlockStore`] remembers when each block was first stored, so the gateway
//! can model propagation: a block becomes readable through `/ipfs/` only once
//! the propagation delay has passed since that moment. Nothing is ever
//! removed, so every stored block is effectively pinned.
//!
//! A directory-backed store keeps one file per block, named by its CID
//! (base32 CIDv1). Files are written to a temporary name and renamed into
//! place, so a killed process never leaves a half-written block under a real
//! name. Blocks found on disk at startup count as already propagated: they
//! were visible to the network before the restart.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use sphere_protocol::ipld::{Block, BlockError, verify_block};
use tokio::time::Instant;

/// Why the block store could not open, read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's directory could not be created.
    #[error("cannot create block directory `{path}`: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The store's directory could not be listed.
    #[error("cannot list block directory `{path}`: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A block file could not be read at startup.
    #[error("cannot read block file `{path}`: {source}")]
    ReadBlock {
        /// The block file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A block file's bytes do not match the CID it is named by.
    #[error("block file `{path}` is corrupt: {source}")]
    Corrupt {
        /// The block file.
        path: PathBuf,
        /// How it fails verification (boxed to keep the error small).
        source: Box<BlockError>,
    },
    /// A block file could not be written.
    #[error("cannot write block file `{path}`: {source}")]
    WriteBlock {
        /// The block file (or its temporary name).
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A block handed to the store does not match its CID.
    #[error("refusing to store an invalid block: {0}")]
    Invalid(#[from] BlockError),
    /// The background task writing block files died.
    #[error("the block writer task failed: {0}")]
    WriterFailed(#[from] tokio::task::JoinError),
}

/// Whether a block can be read through the public gateway yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Never stored here.
    Missing,
    /// Stored, but the propagation delay has not passed.
    Pending,
    /// Stored and propagated.
    Visible(Bytes),
}

#[derive(Debug, Clone)]
struct StoredBlock {
    data: Bytes,
    /// When the block was first stored; `None` for blocks found on disk at
    /// startup, which count as propagated long ago.
    first_stored: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    blocks: RwLock<HashMap<Cid, StoredBlock>>,
    dir: Option<PathBuf>,
    /// Makes temporary file names unique across concurrent writers.
    temp_counter: AtomicU64,
}

/// Verified blocks by CID, shared by every clone (an `Arc` inside).
#[derive(Debug, Clone, Default)]
pub struct BlockStore {
    inner: Arc<Inner>,
}

impl BlockStore {
    /// An empty store that lives only as long as the process.
    pub fn in_memory() -> BlockStore {
        BlockStore::default()
    }

    /// A store persisted in `path` (created if missing), loading the blocks
    /// already there as propagated.
    ///
    /// Leftover temporary files from an interrupted write are deleted; files
    /// whose names are not CIDs are ignored; a block file whose bytes do not
    /// match its name is an error, because it means the disk is lying.
    pub fn open_dir(path: impl AsRef<Path>) -> Result<BlockStore, StoreError> {
        let dir = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let read_dir_error = |source| StoreError::ReadDir {
            path: dir.clone(),
            source,
        };
        let mut blocks = HashMap::new();
        for entry in std::fs::read_dir(&dir).map_err(read_dir_error)? {
            let path = entry.map_err(read_dir_error)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if is_temp_name(name) {
                // An interrupted write; the block was never stored.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Ok(cid) = name.parse::<Cid>() else {
                tracing::warn!(path = %path.display(), "ignoring a file that is not named by a cid");
                continue;
            };
            let data = std::fs::read(&path).map_err(|source| StoreError::ReadBlock {
                path: path.clone(),
                source,
            })?;
            verify_block(&cid, &data).map_err(|source| StoreError::Corrupt {
                path: path.clone(),
                source: Box::new(source),
            })?;
            let data = Bytes::from(data);
            blocks.insert(
                cid,
                StoredBlock {
                    data,
                    first_stored: None,
                },
            );
        }
        Ok(BlockStore {
            inner: Arc::new(Inner {
                blocks: RwLock::new(blocks),
                dir: Some(dir),
                temp_counter: AtomicU64::new(0),
            }),
        })
    }

    /// Stores one block after verifying it; returns whether it was new.
    pub async fn put(&self, block: Block) -> Result<bool, StoreError> {
        Ok(self.put_all(vec![block]).await? == 1)
    }

    /// Stores every block after verifying all of them; returns how many were
    /// new. If any block is invalid, nothing is stored.
    ///
    /// A block stored again keeps its first storage time, so re-pinning
    /// does not restart its propagation.
    pub async fn put_all(&self, blocks: Vec<Block>) -> Result<usize, StoreError> {
        for block in &blocks {
            verify_block(&block.cid, &block.data)?;
        }
        let mut fresh: Vec<Block> = {
            let map = self.read_map();
            blocks
                .into_iter()
                .filter(|b| !map.contains_key(&b.cid))
                .collect()
        };
        fresh.sort_by_key(|b| b.cid);
        fresh.dedup_by_key(|b| b.cid);
        if let Some(dir) = &self.inner.dir {
            // Files first, map second: a block is only served once it is
            // durable, and a failed write leaves the map untouched.
            let dir = dir.clone();
            let store = self.clone();
            let to_write = fresh.clone();
            tokio::task::spawn_blocking(move || store.write_files(&dir, &to_write)).await??;
        }
        let now = Instant::now();
        let mut map = self.write_map();
        let mut added = 0;
        for block in fresh {
            map.entry(block.cid).or_insert_with(|| {
                added += 1;
                StoredBlock {
                    data: block.data,
                    first_stored: Some(now),
                }
            });
        }
        Ok(added)
    }

    /// The block's bytes, whether or not it has propagated.
    pub fn get(&self, cid: &Cid) -> Option<Bytes> {
        self.read_map().get(cid).map(|b| b.data.clone())
    }

    /// Whether the block is stored, propagated or not.
    pub fn contains(&self, cid: &Cid) -> bool {
        self.read_map().contains_key(cid)
    }

    /// How many blocks are stored.
    pub fn len(&self) -> usize {
        self.read_map().len()
    }

    /// Whether the store holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the block has been stored for at least `propagation`.
    pub(crate) fn visibility(&self, cid: &Cid, propagation: Duration) -> Visibility {
        match self.read_map().get(cid) {
            None => Visibility::Missing,
            Some(StoredBlock {
                first_stored: Some(at),
                ..
            }) if at.elapsed() < propagation => Visibility::Pending,
            Some(block) => Visibility::Visible(block.data.clone()),
        }
    }

    fn write_files(&self, dir: &Path, blocks: &[Block]) -> Result<(), StoreError> {
        for block in blocks {
            let name = block.cid.to_string();
            let target = dir.join(&name);
            let n = self.inner.temp_counter.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            // No fsync: the rename makes the write atomic against a killed
            // process, which is the failure the testnet has to survive;
            // surviving power loss is not worth an fsync per block.
            std::fs::write(&temp, &block.data).map_err(|source| StoreError::WriteBlock {
                path: temp.clone(),
                source,
            })?;
            std::fs::rename(&temp, &target).map_err(|source| {
                let _ = std::fs::remove_file(&temp);
                StoreError::WriteBlock {
                    path: target.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    // A panic while holding the lock cannot leave the map half-updated (each
    // insert is atomic), so a poisoned lock is still safe to use.
    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Cid, StoredBlock>> {
        self.inner
            .blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Cid, StoredBlock>> {
        self.inner
            .blocks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use sphere_protocol::ipld::Codec;

    use super::*;

    #[tokio::test]
    async fn blocks_become_visible_after_the_propagation_delay() {
        let store = BlockStore::in_memory();
        let block = Block::new(Codec::Raw, b"leaf".to_vec());
        assert_eq!(
            store.visibility(&block.cid, Duration::ZERO),
            Visibility::Missing
        );
        assert!(store.put(block.clone()).await.unwrap());
        assert!(
            !store.put(block.clone()).await.unwrap(),
            "a second put is not new"
        );
        assert_eq!(
            store.visibility(&block.cid, Duration::from_secs(3600)),
            Visibility::Pending
        );
        assert_eq!(
            store.visibility(&block.cid, Duration::ZERO),
            Visibility::Visible(block.data)
        );
    }

    #[tokio::test]
    async fn an_invalid_block_stores_nothing() {
        let store = BlockStore::in_memory();
        let good = Block::new(Codec::Raw, b"good".to_vec());
        let mut bad = Block::new(Codec::Raw, b"bad".to_vec());
        bad.data = Bytes::from_static(b"tampered");
        let err = store.put_all(vec![good, bad.clone()]).await.unwrap_err();
        assert!(err.to_string().contains(&bad.cid.to_string()), "{err}");
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_corrupt_file_on_disk_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let block = Block::new(Codec::Raw, b"on disk".to_vec());
        std::fs::write(dir.path().join(block.cid.to_string()), b"not it").unwrap();
        let err = BlockStore::open_dir(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}
