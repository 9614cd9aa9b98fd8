//! The aggregator's on-disk form: its signing key and an append-only log of
//! sealed blocks, one JSON line each. Replaying the log rebuilds the tree, so
//! a restarted testnet serves the same roots under the same trust base.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
};

use sphere_protocol::signing::SecretKey;

use super::{AggregatorError, ledger::SealedBlock};

/// An open journal.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
}

fn storage(path: &Path, message: impl ToString) -> AggregatorError {
    AggregatorError::Storage {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir`; returns it with the key and
    /// every block written so far.
    pub(crate) fn open(
        dir: &Path,
    ) -> Result<(Journal, SecretKey, Vec<SealedBlock>), AggregatorError> {
        std::fs::create_dir_all(dir).map_err(|e| storage(dir, e))?;
        let key = load_or_create_key(&dir.join("signing.key"))?;
        let path = dir.join("blocks.jsonl");
        let mut blocks = Vec::new();
        if path.exists() {
            let file = File::open(&path).map_err(|e| storage(&path, e))?;
            for (index, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| storage(&path, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<SealedBlock>(&line) {
                    Ok(block) => blocks.push(block),
                    // A torn last line is what a crash mid-append leaves;
                    // anything earlier is corruption.
                    Err(e) => {
                        tracing::warn!(line = index + 1, error = %e, "ignoring unreadable journal line");
                    }
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| storage(&path, e))?;
        Ok((Journal { path, file }, key, blocks))
    }

    /// Where the blocks are written.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one sealed block.
    pub(crate) fn append(&mut self, block: &SealedBlock) -> Result<(), AggregatorError> {
        let mut line = serde_json::to_string(block).map_err(|e| storage(&self.path, e))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| storage(&self.path, e))
    }
}

fn load_or_create_key(path: &Path) -> Result<SecretKey, AggregatorError> {
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| storage(path, e))?;
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| storage(path, "not a 32-byte hex key"))?;
        return SecretKey::from_bytes(&bytes).map_err(|e| storage(path, e));
    }
    let bytes: [u8; 32] = rand::random();
    let key = SecretKey::from_bytes(&bytes).map_err(|e| storage(path, e))?;
    std::fs::write(path, hex::encode(bytes)).map_err(|e| storage(path, e))?;
    Ok(key)
}
