use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// A sha256 digest, displayed as `sha256:<hex>` like OCI descriptors.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 0xf)] as char);
        }
        s
    }

    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A reader that hashes and counts every byte that passes through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    /// `None` when another reader already hashes the same bytes.
    hasher: Option<Sha256>,
    count: u64,
    limit: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Some(Sha256::new()),
            count: 0,
            limit: u64::MAX,
        }
    }

    /// Fails reads past `limit` bytes (with [`io::ErrorKind::FileTooLarge`]): a stream that
    /// inflates without end is cut off instead of read for ever.
    pub fn with_limit(inner: R, limit: u64) -> Self {
        Self {
            limit,
            ..Self::new(inner)
        }
    }

    /// Counts and limits without hashing: for an uncompressed layer, the tar stream is the
    /// blob, whose digest is already computed one reader below.
    pub fn without_hashing(mut self) -> Self {
        self.hasher = None;
        self
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads what is left to the end, then returns the digest (`None` without hashing) and
    /// the byte count.
    pub fn finish(mut self) -> io::Result<(Option<Sha256Digest>, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            self.hasher.map(|h| Sha256Digest(h.finalize().into())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "the stream is larger than its limit",
            ));
        }
        Ok(n)
    }
}
