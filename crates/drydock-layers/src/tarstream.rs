//! Reading a tar stream exactly as leniently as Go's `archive/tar` (docker, containerd, podman,
//! umoci and skopeo all use it), and no more.
//!
//! Go's reader takes an end of stream right after an entry's data, or anywhere inside the
//! padding that rounds the data up to 512 bytes, as the end of the archive: writers that omit
//! the padding and the two zero blocks after the last file make images that run. An end of
//! stream inside an entry's data or inside a header block is a truncated archive.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

const BLOCK: u64 = 512;

/// A reader that counts the bytes taken from it, so that an error of the tar reader can be
/// placed in the stream while the reader itself is borrowed.
#[derive(Debug)]
pub struct Counted<R> {
    inner: R,
    position: Rc<Cell<u64>>,
}

impl<R: Read> Counted<R> {
    /// The reader and a handle on its position.
    pub fn new(inner: R) -> (Self, Rc<Cell<u64>>) {
        let position = Rc::new(Cell::new(0));
        (
            Self {
                inner,
                position: Rc::clone(&position),
            },
            position,
        )
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position.set(self.position.get() + n as u64);
        Ok(n)
    }
}

/// How the tar crate's skip names an end of stream before the next header.
const SKIP_EOF: &str = "unexpected EOF during skip";

/// A [`Counted`] reader that the tar crate may "seek" forward (for
/// `tar::Archive::entries_with_seek`): a seek reads the bytes it passes over through one
/// buffer allocated once, so every byte still goes through the readers below it (hashes,
/// limits, budgets), with the errors the tar crate's own skip gives. That skip zeroes a
/// 32 KiB buffer on the stack for every entry, even to skip nothing.
#[derive(Debug)]
pub struct ForwardSeek<R> {
    inner: Counted<R>,
    position: Rc<Cell<u64>>,
    buffer: Vec<u8>,
}

impl<R: Read> ForwardSeek<R> {
    /// The reader and a handle on its position.
    pub fn new(inner: R) -> (Self, Rc<Cell<u64>>) {
        let (inner, position) = Counted::new(inner);
        let reader = Self {
            inner,
            position: Rc::clone(&position),
            buffer: Vec::new(),
        };
        (reader, position)
    }

    /// Reads and drops `amount` bytes, as the tar crate's skip does.
    fn skip(&mut self, mut amount: u64) -> io::Result<()> {
        if amount > 0 && self.buffer.is_empty() {
            self.buffer = vec![0; 32 << 10];
        }
        while amount > 0 {
            let want = usize::try_from(amount.min(self.buffer.len() as u64)).unwrap_or(0);
            let Some(buffer) = self.buffer.get_mut(..want) else {
                break;
            };
            let n = self.inner.read(buffer)?;
            if n == 0 {
                return Err(io::Error::other(SKIP_EOF));
            }
            amount -= n as u64;
        }
        Ok(())
    }

    /// Reads to the end of the stream: what the tar crate's skip of more than `i64::MAX` bytes
    /// does, where its seek refuses ([`refused_seek`]), and the error it ends with.
    pub fn skip_to_end(&mut self) -> io::Error {
        match self.skip(u64::MAX) {
            Err(error) => error,
            Ok(()) => io::Error::other(SKIP_EOF),
        }
    }
}

/// Whether `error` is the tar crate refusing to seek more than `i64::MAX` bytes to the next
/// header, where its skip would have read to the end of the stream instead
/// ([`ForwardSeek::skip_to_end`]).
pub fn refused_seek(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::Other && error.to_string() == "seek position out of bounds"
}

impl<R: Read> Read for ForwardSeek<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Read> Seek for ForwardSeek<R> {
    /// Only forward from here, by reading: the position returned counts from the start.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match to {
            SeekFrom::Current(offset) if offset >= 0 => {
                self.skip(offset.unsigned_abs())?;
                Ok(self.position.get())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a layer stream only moves forward",
            )),
        }
    }
}

/// Where the data of the last entry read ends, to judge an end of stream that follows it.
#[derive(Debug, Default, Clone, Copy)]
pub struct EntryBounds {
    data_end: u64,
}

/// What an error of the tar reader at some position means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The stream ended after the last entry's data: the end of the archive, as Go reads it.
    EndOfArchive,
    /// The stream ended inside the last entry's data.
    InsideData,
    /// The stream ended inside a header block, after the last entry.
    InsideHeader,
    /// Anything else (a header cut short, a malformed header, a decoder error).
    Other,
}

impl EntryBounds {
    /// Records an entry whose data starts at `data_start` and holds `size` bytes.
    pub fn entered(&mut self, data_start: u64, size: u64) {
        self.data_end = data_start.saturating_add(size);
    }

    /// Judges `error`, returned by the tar reader when the stream was at `position`.
    pub fn judge(&self, error: &io::Error, position: u64) -> StreamEnd {
        let message = error.to_string();
        // The tar crate's words for a header block cut short.
        if message.contains("failed to read entire block") {
            return StreamEnd::InsideHeader;
        }
        let end_of_stream =
            error.kind() == io::ErrorKind::UnexpectedEof || message.contains("unexpected EOF");
        if !end_of_stream {
            return StreamEnd::Other;
        }
        let padded_end = self.data_end.div_ceil(BLOCK).saturating_mul(BLOCK);
        if position < self.data_end {
            StreamEnd::InsideData
        } else if position < padded_end || position == self.data_end {
            StreamEnd::EndOfArchive
        } else {
            StreamEnd::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eof() -> io::Error {
        io::Error::other("unexpected EOF during skip")
    }

    #[test]
    fn an_end_inside_the_padding_ends_the_archive() {
        let mut bounds = EntryBounds::default();
        bounds.entered(512, 100);
        assert_eq!(bounds.judge(&eof(), 612), StreamEnd::EndOfArchive);
        assert_eq!(bounds.judge(&eof(), 700), StreamEnd::EndOfArchive);
        assert_eq!(bounds.judge(&eof(), 611), StreamEnd::InsideData);
        assert_eq!(bounds.judge(&eof(), 1024 + 100), StreamEnd::Other);
        let corrupt = io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream");
        assert_eq!(bounds.judge(&corrupt, 612), StreamEnd::Other);
    }
}
