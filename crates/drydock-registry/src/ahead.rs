//! Layers downloaded ahead of their walk. A scan walks as many layers at once as it has cores,
//! each streamed from the registry as it is walked; the others would wait for a walker before
//! their first byte is asked for. Fetching them ahead into the blob cache (a few connections
//! at once) puts every layer on the wire from the start, and a walker that reaches a layer
//! still downloading reads it from the cache's temporary file as the bytes arrive, never
//! downloading it twice. The copy is committed to the cache only once its sha256 matches; the
//! walk checks the digest of what it read on its own, as for every other source.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::cache::{CacheCopy, CacheWriter};
use crate::client::RegistryClient;

/// How far a download has got.
#[derive(Debug, Default)]
struct Progress {
    written: u64,
    /// `None` while bytes arrive; then the end of the stream or why it stopped.
    end: Option<Result<(), String>>,
}

/// One blob being fetched ahead, shared by the fetcher and the walker that follows it.
#[derive(Debug)]
pub(crate) struct Download {
    /// The temporary file, opened for reading before the first byte is written (it stays
    /// readable when it is renamed into place or removed).
    file: File,
    progress: Mutex<Progress>,
    arrived: Condvar,
}

impl Download {
    /// A download into `writer`'s temporary file.
    pub(crate) fn new(writer: &CacheWriter) -> io::Result<Self> {
        Ok(Self {
            file: File::open(writer.temp_path())?,
            progress: Mutex::new(Progress::default()),
            arrived: Condvar::new(),
        })
    }

    /// Whether the download stopped short (a walker then streams the blob itself).
    pub(crate) fn failed(&self) -> bool {
        let progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        matches!(progress.end, Some(Err(_)))
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut progress);
        self.arrived.notify_all();
    }

    /// Fetches `digest` from `client` into `writer`, telling followers of every write, and
    /// commits it if its sha256 is right. Gives up between reads once `stop` is set.
    pub(crate) fn run(
        &self,
        client: &RegistryClient,
        digest: &str,
        writer: CacheWriter,
        stop: &AtomicBool,
    ) {
        let mut copy = CacheCopy::new(writer);
        let result = (|| -> Result<(), String> {
            let mut stream = client.blob(digest).map_err(|e| e.to_string())?;
            let mut buffer = vec![0; 256 * 1024];
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Err("the scan ended before this layer was downloaded".into());
                }
                let n = match stream.read(&mut buffer) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.to_string()),
                };
                // The follower reads the file: a failed write ends the download.
                if !copy.take(&buffer[..n]) {
                    return Err("writing the blob cache failed".into());
                }
                self.update(|p| p.written += n as u64);
            }
        })();
        if result.is_ok() {
            copy.commit_if(digest);
        } else {
            // Removes the temporary file; a follower keeps reading its open handle.
            drop(copy);
        }
        self.update(|p| p.end = Some(result));
    }
}

/// Reads a [`Download`] from its first byte, waiting for bytes not yet arrived.
#[derive(Debug)]
pub(crate) struct Following {
    download: Arc<Download>,
    offset: u64,
}

impl Following {
    pub(crate) fn new(download: Arc<Download>) -> Self {
        Self {
            download,
            offset: 0,
        }
    }
}

impl Read for Following {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let download = &*self.download;
        let mut progress = download.progress.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.offset < progress.written {
                let ready = (progress.written - self.offset).min(buf.len() as u64) as usize;
                drop(progress);
                let n = download.file.read_at(&mut buf[..ready], self.offset)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the blob cache's temporary file is shorter than what was written to it",
                    ));
                }
                self.offset += n as u64;
                return Ok(n);
            }
            match &progress.end {
                Some(Ok(())) => return Ok(0),
                Some(Err(reason)) => return Err(io::Error::other(reason.clone())),
                None => {
                    progress = download
                        .arrived
                        .wait(progress)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}
