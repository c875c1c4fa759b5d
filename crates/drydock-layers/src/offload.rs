//! Work on a stream's bytes moved to a helper thread: the reader's thread copies what it
//! reads into buffers (memory bandwidth only) and a thread of its own hashes or writes them.
//! The two meet in a bounded queue, so memory stays at `DEPTH` × `CHUNK` whatever the stream's
//! length, and buffers are handed back to be reused.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes a stream is worked on its reader's own thread before the work moves to a helper
/// thread: a small stream is not worth a thread.
pub const OFFLOAD_AFTER: u64 = 4 << 20;

/// Whether this process may use more than one core (else a helper thread only adds copies).
pub fn has_spare_core() -> bool {
    static SPARE: OnceLock<bool> = OnceLock::new();
    *SPARE.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Bytes per buffer handed over.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Buffers in flight: 1 MiB ahead at most.
const DEPTH: usize = 4;

/// A state fed the bytes of a stream, in order, on a thread of its own (see the module doc).
/// Dropped before [`Offload::finish`], it ends the thread and waits for it, so that whatever
/// the state holds (a temporary file) is cleaned up before the drop returns.
#[derive(Debug)]
pub struct Offload<S> {
    /// `None` once the end is said.
    chunks: Option<SyncSender<Vec<u8>>>,
    recycle: Receiver<Vec<u8>>,
    current: Vec<u8>,
    /// `None` once joined.
    thread: Option<JoinHandle<S>>,
}

impl<S: Send + 'static> Offload<S> {
    /// Starts a thread named `name` that calls `feed(&mut state, bytes)` for every piece of the
    /// stream; [`Offload::finish`] gives the state back once it has seen every byte.
    pub fn spawn(
        name: &str,
        mut state: S,
        feed: impl Fn(&mut S, &[u8]) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (chunks, queue) = sync_channel::<Vec<u8>>(DEPTH);
        let (give_back, recycle) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for mut chunk in queue {
                    feed(&mut state, &chunk);
                    chunk.clear();
                    // The spare queue is full only if the reader made new buffers meanwhile.
                    let _ = give_back.try_send(chunk);
                }
                state
            })?;
        Ok(Self {
            chunks: Some(chunks),
            recycle,
            current: Vec::with_capacity(CHUNK),
            thread: Some(thread),
        })
    }
}

impl<S> Offload<S> {
    /// Copies `bytes` towards the thread, handing over every full buffer; blocks while the
    /// thread is `DEPTH` buffers behind.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = bytes.len().min(CHUNK - self.current.len());
            self.current.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.current.len() == CHUNK {
                self.hand_over();
            }
        }
    }

    fn hand_over(&mut self) {
        let spare = self
            .recycle
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.current, spare);
        // A send fails only if the thread is gone (it panicked): `finish` says so.
        if let Some(chunks) = &self.chunks {
            let _ = chunks.send(full);
        }
    }

    /// Hands over the rest, waits for the thread, and gives its state back; `None` if the
    /// thread stopped before the end (a panic in `feed`).
    pub fn finish(mut self) -> Option<S> {
        if !self.current.is_empty() {
            self.hand_over();
        }
        self.chunks = None;
        match self.thread.take() {
            Some(thread) => thread.join().ok(),
            None => None,
        }
    }
}

impl<S> Drop for Offload<S> {
    fn drop(&mut self) {
        self.chunks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_arrives_once_and_in_order() {
        let bytes: Vec<u8> = (0..3 * CHUNK + 1234).map(|i| (i % 251) as u8).collect();
        let mut offload = Offload::spawn("test", Vec::new(), |seen: &mut Vec<u8>, b| {
            seen.extend_from_slice(b)
        })
        .unwrap();
        for piece in bytes.chunks(7777) {
            offload.feed(piece);
        }
        assert_eq!(offload.finish().unwrap(), bytes);
    }

    #[test]
    fn a_panicking_thread_is_an_error_not_a_hang() {
        let mut offload = Offload::spawn("test", (), |(), _| panic!("feed failed")).unwrap();
        for _ in 0..3 * DEPTH {
            offload.feed(&[1; CHUNK]);
        }
        assert!(offload.finish().is_none());
    }

    #[test]
    fn dropping_it_halfway_waits_for_the_thread_to_end() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let mut offload = Offload::spawn("test", (), move |(), b| {
            counter.fetch_add(b.len(), Ordering::SeqCst);
        })
        .unwrap();
        offload.feed(&[0; 2 * CHUNK + 5]);
        drop(offload);
        // The full buffers were handed over and fed before the drop returned.
        assert_eq!(seen.load(Ordering::SeqCst), 2 * CHUNK);
    }
}
