use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::offload::{OFFLOAD_AFTER, Offload, has_spare_core};

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
    hasher: Option<StreamHasher>,
    /// Move the hashing to a helper thread once the stream is long.
    offload: bool,
    count: u64,
    limit: u64,
}

/// Where the sha256 of a stream is computed.
#[derive(Debug)]
enum StreamHasher {
    Here(Sha256),
    Helper(Offload<Sha256>),
}

impl StreamHasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Here(hasher) => hasher.update(bytes),
            Self::Helper(helper) => helper.feed(bytes),
        }
    }

    fn finish(self) -> io::Result<Sha256Digest> {
        let hasher = match self {
            Self::Here(hasher) => hasher,
            Self::Helper(helper) => helper.finish().ok_or_else(|| {
                io::Error::other("the sha256 thread stopped before the stream's end")
            })?,
        };
        Ok(Sha256Digest(hasher.finalize().into()))
    }
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Some(StreamHasher::Here(Sha256::new())),
            offload: false,
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

    /// Hashes on a helper thread once the stream is past [`OFFLOAD_AFTER`] bytes (and the
    /// machine has a core to spare), so that the reader's thread decompresses and walks while
    /// another core hashes. The digest is the same either way.
    pub fn on_a_helper_thread(mut self) -> Self {
        self.offload = has_spare_core();
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
        let digest = self.hasher.map(StreamHasher::finish).transpose()?;
        Ok((digest, self.count))
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
        if self.offload
            && self.count > OFFLOAD_AFTER
            && let Some(StreamHasher::Here(_)) = &self.hasher
        {
            self.offload = false;
            if let Some(StreamHasher::Here(state)) = self.hasher.take() {
                // The state is cloned so that it survives a thread that cannot be made.
                let helper = Offload::spawn("drydock-sha256", state.clone(), |hasher, bytes| {
                    hasher.update(bytes)
                });
                self.hasher = Some(match helper {
                    Ok(helper) => StreamHasher::Helper(helper),
                    Err(_) => StreamHasher::Here(state),
                });
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::CHUNK;

    /// Bytes that are not all alike, so a lost or reordered chunk changes the digest.
    fn stream(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// Reads in uneven pieces, as a decoder does.
    struct Uneven<'a>(&'a [u8], usize);

    impl Read for Uneven<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 * 7 % 100_003 + 1;
            let n = buf.len().min(self.0.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_digest_is_the_same_on_a_helper_thread() {
        let offload_after = usize::try_from(OFFLOAD_AFTER).unwrap();
        for len in [
            0,
            1,
            offload_after,
            offload_after + 1,
            offload_after + 3 * CHUNK + 17,
        ] {
            let bytes = stream(len);
            let expected = Sha256Digest::of(&bytes);
            let (digest, count) = HashingReader::new(Uneven(&bytes, 1))
                .on_a_helper_thread()
                .finish()
                .unwrap();
            assert_eq!(digest, Some(expected), "{len} bytes");
            assert_eq!(count, len as u64);
        }
    }

    #[test]
    fn a_long_stream_is_hashed_by_the_helper() {
        let bytes = stream(usize::try_from(OFFLOAD_AFTER).unwrap() + 5 * CHUNK);
        let mut reader = HashingReader::new(&bytes[..]);
        reader.offload = true;
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert!(matches!(reader.hasher, Some(StreamHasher::Helper(_))));
        let (digest, _) = reader.finish().unwrap();
        assert_eq!(digest, Some(Sha256Digest::of(&bytes)));
    }
}
