//! The filesystem blob store: content above the inline limit, one file per
//! sha256 at `DIR/ab/abcdef…`.
//!
//! A blob is written to a temporary file beside its final name and renamed
//! into place once complete and synced, so a crash never leaves a partial
//! blob under a name that claims to be whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use crate::error::Result;

/// The size of each write and of each chunk read back.
pub(crate) const CHUNK_BYTES: usize = 64 * 1024;

/// A folder of content-addressed files.
#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Opens the store, creating its folder when missing.
    pub(crate) async fn open(dir: &Path) -> Result<BlobStore> {
        tokio::fs::create_dir_all(dir).await?;
        Ok(BlobStore {
            dir: dir.to_owned(),
        })
    }

    /// Where the blob with this sha256 (lowercase hex) lives.
    pub(crate) fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2.min(sha256.len())]).join(sha256)
    }

    /// Stores `content` under its sha256 unless it is already there.
    pub(crate) async fn write(&self, sha256: &str, content: Vec<u8>) -> Result<()> {
        let path = self.path(sha256);
        tokio::task::spawn_blocking(move || write_atomically(&path, &content))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// The whole content of a blob.
    pub(crate) async fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        Ok(tokio::fs::read(self.path(sha256)).await?)
    }

    /// Opens a blob for reading in chunks.
    pub(crate) async fn open_reader(&self, sha256: &str) -> Result<tokio::fs::File> {
        Ok(tokio::fs::File::open(self.path(sha256)).await?)
    }
}

fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        // Same name, same sha256, same bytes: nothing to do.
        return Ok(());
    }
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("blob path has no folder"))?;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        for chunk in content.chunks(CHUNK_BYTES) {
            file.write_all(chunk)?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Reads up to one chunk, fewer bytes only at the end of the file.
pub(crate) async fn read_chunk(file: &mut tokio::fs::File) -> Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    while chunk.len() < CHUNK_BYTES {
        let read = (&mut *file)
            .take((CHUNK_BYTES - chunk.len()) as u64)
            .read_to_end(&mut chunk)
            .await?;
        if read == 0 {
            break;
        }
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_round_trip_under_their_sha() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = BlobStore::open(&dir.path().join("blobs"))
            .await
            .expect("open");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        store.write("abcdef", content.clone()).await.expect("write");
        store
            .write("abcdef", content.clone())
            .await
            .expect("rewrite is a no-op");
        assert_eq!(store.path("abcdef"), dir.path().join("blobs/ab/abcdef"));
        assert_eq!(store.read("abcdef").await.expect("read"), content);

        let mut file = store.open_reader("abcdef").await.expect("open");
        let mut sizes = Vec::new();
        loop {
            let chunk = read_chunk(&mut file).await.expect("chunk");
            if chunk.is_empty() {
                break;
            }
            sizes.push(chunk.len());
        }
        assert_eq!(
            sizes,
            vec![
                CHUNK_BYTES,
                CHUNK_BYTES,
                CHUNK_BYTES,
                200_000 - 3 * CHUNK_BYTES
            ]
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs/ab"))
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary files are left behind");
    }
}
