//! The blob cache: content-addressed files, written under a temporary name and renamed into
//! place only once their digest is verified, so that concurrent scans never see a partial blob
//! and a scan of the same image twice does not download it twice.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use drydock_layers::{OFFLOAD_AFTER, Offload, has_spare_core};
use sha2::{Digest as _, Sha256};

/// A directory of verified blobs, `blobs/sha256/<hex>`.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn hex_of(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

impl BlobCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$XDG_CACHE_HOME/drydock`, else `~/.cache/drydock`.
    pub fn default_dir() -> Option<PathBuf> {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        env("XDG_CACHE_HOME")
            .or_else(|| env("HOME").map(|home| home.join(".cache")))
            .map(|dir| dir.join("drydock"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        Some(self.root.join("blobs/sha256").join(hex_of(digest)?))
    }

    /// A cached blob. Callers verify what they read (the layer walk checks every digest), so a
    /// damaged cache file is caught, never trusted.
    pub fn get(&self, digest: &str) -> Option<File> {
        let file = File::open(self.path(digest)?).ok();
        if file.is_some() {
            log::debug!("{digest}: from the blob cache");
        }
        file
    }

    /// Stores a small blob already held in memory, if its digest is right.
    pub fn put(&self, digest: &str, bytes: &[u8]) {
        if crate::client::sha256_digest(bytes) != digest {
            return;
        }
        if let Some(mut writer) = self.writer(digest)
            && writer.file.write_all(bytes).is_ok()
        {
            writer.commit();
        }
    }

    /// A writer for a blob being downloaded; `None` if the cache is not writable (the scan goes
    /// on without it).
    pub fn writer(&self, digest: &str) -> Option<CacheWriter> {
        let target = self.path(digest)?;
        let dir = target.parent()?;
        fs::create_dir_all(dir).ok()?;
        let temp = dir.join(format!(
            ".tmp-{}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            hex_of(digest)?
        ));
        let file = File::create(&temp).ok()?;
        Some(CacheWriter {
            file,
            temp,
            target,
            done: false,
        })
    }
}

/// A blob being written to the cache.
#[derive(Debug)]
pub struct CacheWriter {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl CacheWriter {
    /// Where the bytes are written until they are committed.
    pub(crate) fn temp_path(&self) -> &Path {
        &self.temp
    }

    pub(crate) fn commit(&mut self) {
        if self.file.flush().is_ok() && fs::rename(&self.temp, &self.target).is_ok() {
            self.done = true;
        }
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The cache copy of a download and the sha256 that decides whether it is kept.
#[derive(Debug)]
pub(crate) struct CacheCopy {
    hasher: Sha256,
    writer: CacheWriter,
    /// Set by the first failed write: the copy is then abandoned.
    failed: bool,
}

impl CacheCopy {
    pub(crate) fn new(writer: CacheWriter) -> Self {
        Self {
            hasher: Sha256::new(),
            writer,
            failed: false,
        }
    }

    /// Hashes and writes the next bytes; `false` once a write has failed (nothing more is
    /// written, and the copy will not be committed).
    pub(crate) fn take(&mut self, bytes: &[u8]) -> bool {
        if !self.failed {
            self.hasher.update(bytes);
            self.failed = self.writer.file.write_all(bytes).is_err();
        }
        !self.failed
    }

    /// Commits the copy if every write succeeded and its sha256 is `expected`; else removes it.
    pub(crate) fn commit_if(mut self, expected: &str) {
        let digest: [u8; 32] = self.hasher.finalize().into();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if !self.failed && format!("sha256:{hex}") == expected {
            self.writer.commit();
        }
    }
}

#[derive(Debug)]
enum Copying {
    Here(CacheCopy),
    /// A long download is hashed and written on a helper thread, so that the reader's thread
    /// inflates and walks while another core does the rest: the cache is written from the
    /// very bytes the walk reads, at no cost to it.
    Helper(Offload<CacheCopy>),
}

/// Tees a download into the cache, committing it only when the stream ends with the expected
/// digest. A cache write failure drops the cache copy, never the scan.
#[derive(Debug)]
pub struct CachingReader<R> {
    inner: R,
    copy: Option<Copying>,
    read: u64,
    expected: String,
}

impl<R: Read> CachingReader<R> {
    pub fn new(inner: R, writer: Option<CacheWriter>, expected: &str) -> Self {
        Self {
            inner,
            copy: writer.map(|writer| Copying::Here(CacheCopy::new(writer))),
            read: 0,
            expected: expected.into(),
        }
    }

    /// Moves the copy to a helper thread once the download is long (and a core is spare).
    fn offload_if_long(&mut self) {
        if self.read <= OFFLOAD_AFTER
            || !has_spare_core()
            || !matches!(self.copy, Some(Copying::Here(_)))
        {
            return;
        }
        if let Some(Copying::Here(copy)) = self.copy.take() {
            // A copy whose thread cannot be made is dropped (its temporary file removed).
            let take = |copy: &mut CacheCopy, bytes: &[u8]| {
                copy.take(bytes);
            };
            self.copy = Offload::spawn("drydock-cache-copy", copy, take)
                .ok()
                .map(Copying::Helper);
        }
    }
}

impl<R: Read> Read for CachingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            let copy = match self.copy.take() {
                Some(Copying::Here(copy)) => Some(copy),
                Some(Copying::Helper(helper)) => helper.finish(),
                None => None,
            };
            if let Some(copy) = copy {
                copy.commit_if(&self.expected);
            }
            return Ok(0);
        }
        self.read += n as u64;
        match &mut self.copy {
            Some(Copying::Here(copy)) => {
                copy.take(&buf[..n]);
            }
            Some(Copying::Helper(helper)) => helper.feed(&buf[..n]),
            None => {}
        }
        self.offload_if_long();
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_blobs_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let good = b"layer bytes";
        let digest = crate::client::sha256_digest(good);
        let mut reader = CachingReader::new(&good[..], cache.writer(&digest), &digest);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert!(cache.get(&digest).is_some());

        let wrong = crate::client::sha256_digest(b"other");
        let mut reader = CachingReader::new(&good[..], cache.writer(&wrong), &wrong);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert!(cache.get(&wrong).is_none());
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_long_download_is_copied_on_a_helper_thread_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let long: Vec<u8> = (0..OFFLOAD_AFTER + (3 << 20) + 11)
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        let digest = crate::client::sha256_digest(&long);
        let mut reader = CachingReader::new(&long[..], cache.writer(&digest), &digest);
        let mut read = Vec::new();
        reader.read_to_end(&mut read).unwrap();
        assert_eq!(read, long);
        let mut cached = Vec::new();
        cache
            .get(&digest)
            .unwrap()
            .read_to_end(&mut cached)
            .unwrap();
        assert_eq!(cached, long);
        // The same bytes under a digest they do not have are not kept.
        let wrong = crate::client::sha256_digest(b"other");
        let mut reader = CachingReader::new(&long[..], cache.writer(&wrong), &wrong);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert!(cache.get(&wrong).is_none());
        // A long download abandoned near its end leaves no file behind.
        let other: Vec<u8> = long.iter().map(|b| b ^ 1).collect();
        let other_digest = crate::client::sha256_digest(&other);
        let mut reader = CachingReader::new(&other[..], cache.writer(&other_digest), &other_digest);
        let mut most = vec![0; other.len() - 1000];
        reader.read_exact(&mut most).unwrap();
        drop(reader);
        let names = fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(names, 1, "only the verified blob is left");
    }

    #[test]
    fn an_abandoned_download_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let digest = crate::client::sha256_digest(b"x");
        let mut reader = CachingReader::new(&b"xyz"[..], cache.writer(&digest), &digest);
        let mut one = [0u8; 1];
        reader.read_exact(&mut one).unwrap();
        drop(reader);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }
}
