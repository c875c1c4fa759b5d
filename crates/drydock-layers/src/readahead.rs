//! Reading ahead on a helper thread: one stage of a stream's pipeline (reading a file and
//! inflating it) runs on its own core while the reader's thread runs the next (hashing the
//! tar, walking its headers). The two meet in a bounded queue of buffers, so memory stays at
//! `DEPTH` × `CHUNK` whatever the stream's size, and the buffers are handed back to be reused.
//!
//! Nothing is lost or reordered: the bytes come out as the inner reader gave them, an error
//! after the bytes read before it, and a helper that stops without saying the stream ended
//! (a panic) is an error, never a silent end.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::Scope;

/// Bytes per buffer handed over.
const CHUNK: usize = 256 * 1024;
/// Buffers in flight: 2 MiB ahead at most.
const DEPTH: usize = 8;

/// What the helper hands over: bytes, the end (an empty buffer) or an error.
type Message = io::Result<Vec<u8>>;

/// A reader whose inner reader runs on another thread (see the module doc).
#[derive(Debug)]
pub struct ReadAhead {
    chunks: Receiver<Message>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
}

/// The helper's loop: fill buffers from `inner` and send them until the end, an error, or the
/// reader is gone.
fn pump(mut inner: impl Read, chunks: SyncSender<Message>, recycle: Receiver<Vec<u8>>) {
    loop {
        let mut buffer = match recycle.try_recv() {
            Ok(buffer) => buffer,
            Err(TryRecvError::Empty) => Vec::with_capacity(CHUNK),
            // The reader is gone: nobody wants more.
            Err(TryRecvError::Disconnected) => return,
        };
        buffer.clear();
        buffer.resize(CHUNK, 0);
        let mut filled = 0;
        let mut failure = None;
        // Fill at least half a buffer, so that a reader giving small reads (a decoder's
        // blocks) does not make one message per read.
        while filled < CHUNK / 2 {
            match inner.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        buffer.truncate(filled);
        let end = filled == 0 && failure.is_none();
        if filled > 0 && chunks.send(Ok(buffer)).is_err() {
            return;
        }
        if let Some(e) = failure {
            let _ = chunks.send(Err(e));
            return;
        }
        if end {
            let _ = chunks.send(Ok(Vec::new()));
            return;
        }
    }
}

impl ReadAhead {
    fn channels() -> (Self, SyncSender<Message>, Receiver<Vec<u8>>) {
        let (chunk_tx, chunk_rx) = sync_channel(DEPTH);
        let (recycle_tx, recycle_rx) = sync_channel(DEPTH + 2);
        let reader = Self {
            chunks: chunk_rx,
            recycle: recycle_tx,
            current: Vec::new(),
            at: 0,
            ended: false,
        };
        (reader, chunk_tx, recycle_rx)
    }

    /// Reads `inner` on a thread of its own, which ends when the stream does, at its first
    /// error, or once this reader is dropped (after its read in progress).
    pub fn spawn(inner: impl Read + Send + 'static) -> io::Result<Self> {
        let (reader, chunks, recycle) = Self::channels();
        std::thread::Builder::new()
            .name("drydock-read-ahead".into())
            .spawn(move || pump(inner, chunks, recycle))?;
        Ok(reader)
    }

    /// Reads `inner` on a thread of `scope`, for a reader that borrows.
    pub fn in_scope<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        inner: impl Read + Send + 'scope,
    ) -> Self {
        let (reader, chunks, recycle) = Self::channels();
        scope.spawn(move || pump(inner, chunks, recycle));
        reader
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.at == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => {
                    let spent = std::mem::replace(&mut self.current, chunk);
                    self.at = 0;
                    if spent.capacity() > 0 {
                        let _ = self.recycle.try_send(spent);
                    }
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(_) => {
                    self.ended = true;
                    return Err(io::Error::other(
                        "the read-ahead thread stopped before the end of the stream",
                    ));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes in reads of odd sizes, then fails after `fail_after` bytes if asked.
    struct Jagged {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_after: Option<usize>,
    }

    impl Read for Jagged {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.fail_after.is_some_and(|f| self.at >= f) {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt block"));
            }
            self.step = self.step * 7 % 4093 + 1;
            let n = out.len().min(self.step).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn every_byte_comes_through_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 17, DEPTH * CHUNK * 3] {
            let source = data(len);
            let inner = Jagged {
                data: source.clone(),
                at: 0,
                step: 1,
                fail_after: None,
            };
            let mut out = Vec::new();
            ReadAhead::spawn(inner)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == source, "{len} bytes");
        }
    }

    #[test]
    fn an_error_comes_after_the_bytes_read_before_it() {
        let source = data(5 * CHUNK);
        let fail_after = 2 * CHUNK + 1000;
        std::thread::scope(|scope| {
            let inner = Jagged {
                data: source.clone(),
                at: 0,
                step: 1,
                fail_after: Some(fail_after),
            };
            let mut reader = ReadAhead::in_scope(scope, inner);
            let mut out = Vec::new();
            let mut buffer = [0u8; 10_000];
            let error = loop {
                match reader.read(&mut buffer) {
                    Ok(0) => panic!("ended without the error"),
                    Ok(n) => out.extend_from_slice(&buffer[..n]),
                    Err(e) => break e,
                }
            };
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(out.len() >= fail_after && source.starts_with(&out));
        });
    }

    #[test]
    fn a_helper_that_dies_is_an_error_not_an_end() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("a decoder bug");
            }
        }
        let mut out = Vec::new();
        let error = ReadAhead::spawn(Panics)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(
            error.to_string().contains("stopped before the end"),
            "{error}"
        );
    }

    #[test]
    fn dropping_the_reader_stops_the_helper() {
        std::thread::scope(|scope| {
            let endless = io::repeat(7);
            let mut reader = ReadAhead::in_scope(scope, endless);
            let mut buffer = [0u8; 1000];
            reader.read_exact(&mut buffer).unwrap();
            drop(reader);
            // The scope ends only when the helper has: it must notice that nobody reads.
        });
    }
}
