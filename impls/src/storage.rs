//! An actor's storage on disk.
//!
//! Guarantee: when [`save`] returns, the new storage is on disk whole (written to a temporary file,
//! fsynced, renamed over the old one, and the directory fsynced), and a crash at any point leaves
//! either the old storage or the new one, never a mix. The node saves a step's storage before it
//! sends any message of that step, so no peer ever hears of state a crash could lose (etcd's rule:
//! persist the hard state before sending).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

/// Where a node keeps its actor's storage: [`JsonFile`] for any actor, or a store that knows the
/// storage's shape (the Raft log's write-ahead log). `save` returns once the storage is durable.
pub trait Store<S> {
    /// The storage last saved, if any.
    fn load(&mut self) -> std::io::Result<Option<S>>;
    fn save(&mut self, storage: &S) -> std::io::Result<()>;
}

/// The whole storage as one JSON file, replaced atomically ([`save`], [`load`]).
pub struct JsonFile(pub PathBuf);

impl<S: Serialize + DeserializeOwned> Store<S> for JsonFile {
    fn load(&mut self) -> std::io::Result<Option<S>> {
        load(&self.0)
    }
    fn save(&mut self, storage: &S) -> std::io::Result<()> {
        save(&self.0, storage)
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join("storage.json")
}

/// Writes `storage` atomically and durably into `dir`.
pub fn save<S: Serialize>(dir: &Path, storage: &S) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join("storage.json.tmp");
    let bytes = serde_json::to_vec(storage).map_err(std::io::Error::other)?;
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path(dir))?;
    File::open(dir)?.sync_all()
}

/// The storage last saved in `dir`, if any. A corrupt file is an error, not a fresh start: starting
/// over would forget promises the node made (votes, acknowledged writes).
pub fn load<S: DeserializeOwned>(dir: &Path) -> std::io::Result<Option<S>> {
    match fs::read(path(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path(dir).display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_replace_atomically_and_corruption_is_an_error() {
        let dir = std::env::temp_dir().join(format!("impls-storage-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(load::<u32>(&dir).unwrap(), None);
        save(&dir, &7u32).unwrap();
        save(&dir, &8u32).unwrap();
        assert_eq!(load::<u32>(&dir).unwrap(), Some(8));
        assert!(!dir.join("storage.json.tmp").exists());
        fs::write(dir.join("storage.json"), b"{oops").unwrap();
        assert!(load::<u32>(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
