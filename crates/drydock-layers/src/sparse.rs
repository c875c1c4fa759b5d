//! GNU sparse files in PAX form (GNU tar `--sparse --format=pax`), read as Go's `archive/tar`
//! reads them: the entry takes its real name and size from the `GNU.sparse.*` records, and its
//! content is the data segments with the holes between them read as zeros.
//!
//! Formats: 0.0 (`GNU.sparse.offset`/`numbytes` record pairs), 0.1 (`GNU.sparse.map`), 1.0
//! (`GNU.sparse.major=1`, the map written in decimal lines at the start of the data, padded to
//! 512 bytes). The old GNU `S` header is the tar crate's own business.

use std::io::{self, Read};

/// The longest map drydock reads: Go's reader allows 1 MiB of map too.
const MAX_MAP_BYTES: u64 = 1 << 20;
const BLOCK: u64 = 512;

/// What the `GNU.sparse.*` records of an entry say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaxSparse {
    /// `GNU.sparse.name`: the real path (1.0 and 0.1 name the entry `GNUSparseFile.N/…`).
    pub name: Option<Vec<u8>>,
    /// `GNU.sparse.realsize` or `GNU.sparse.size`.
    pub real_size: u64,
    /// (offset, length) of each data segment; `None` when the map is at the start of the data.
    pub map: Option<Vec<(u64, u64)>>,
}

fn number(value: &[u8], key: &str) -> Result<u64, String> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("sparse record {key} is not a number"))
}

/// Reads the sparse records among an entry's PAX extensions; `None` when it is not sparse.
pub(crate) fn pax_sparse(records: &[(Vec<u8>, Vec<u8>)]) -> Result<Option<PaxSparse>, String> {
    let get = |key: &str| {
        records
            .iter()
            .find(|(k, _)| k.as_slice() == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    };
    let major = get("GNU.sparse.major")
        .map(|v| number(v, "GNU.sparse.major"))
        .transpose()?;
    let size = get("GNU.sparse.realsize")
        .map(|v| number(v, "GNU.sparse.realsize"))
        .or_else(|| get("GNU.sparse.size").map(|v| number(v, "GNU.sparse.size")))
        .transpose()?;
    let name = get("GNU.sparse.name").map(<[u8]>::to_vec);
    if major.is_none() && size.is_none() && name.is_none() {
        return Ok(None);
    }
    let real_size = size.ok_or("a sparse entry without GNU.sparse.realsize or GNU.sparse.size")?;
    let map = match major {
        Some(1) => None,
        Some(other) => return Err(format!("sparse format {other}.x is unknown")),
        None => Some(match get("GNU.sparse.map") {
            // 0.1: "offset,length,offset,length…"
            Some(map) => {
                let numbers = std::str::from_utf8(map)
                    .map_err(|_| "GNU.sparse.map is not text".to_owned())?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|n| number(n.as_bytes(), "GNU.sparse.map"))
                    .collect::<Result<Vec<u64>, String>>()?;
                if numbers.len() % 2 != 0 {
                    return Err("GNU.sparse.map holds an odd count of numbers".into());
                }
                numbers.chunks(2).map(|p| (p[0], p[1])).collect()
            }
            // 0.0: repeated offset and numbytes records, in order.
            None => {
                let offsets = records.iter().filter(|(k, _)| k == b"GNU.sparse.offset");
                let lengths = records.iter().filter(|(k, _)| k == b"GNU.sparse.numbytes");
                offsets
                    .zip(lengths)
                    .map(|((_, o), (_, n))| {
                        Ok((
                            number(o, "GNU.sparse.offset")?,
                            number(n, "GNU.sparse.numbytes")?,
                        ))
                    })
                    .collect::<Result<Vec<_>, String>>()?
            }
        }),
    };
    Ok(Some(PaxSparse {
        name,
        real_size,
        map,
    }))
}

/// Reads the 1.0 map at the start of the data: a count, then an offset and a length per
/// segment, one decimal number per line, padded to 512 bytes. Returns the map and the bytes
/// it took.
pub(crate) fn read_map(data: &mut dyn Read) -> Result<(Vec<(u64, u64)>, u64), String> {
    let mut consumed = 0u64;
    let mut line = |consumed: &mut u64| -> Result<u64, String> {
        let mut digits = Vec::new();
        loop {
            let mut byte = [0u8; 1];
            data.read_exact(&mut byte)
                .map_err(|_| "the sparse map ends early".to_owned())?;
            *consumed += 1;
            if *consumed > MAX_MAP_BYTES {
                return Err("the sparse map is over 1 MiB".into());
            }
            match byte[0] {
                b'\n' => break,
                b @ b'0'..=b'9' if digits.len() < 20 => digits.push(b),
                _ => return Err("the sparse map holds something else than numbers".into()),
            }
        }
        number(&digits, "in the sparse map")
    };
    let count = line(&mut consumed)?;
    let mut map = Vec::new();
    for _ in 0..count {
        let offset = line(&mut consumed)?;
        let length = line(&mut consumed)?;
        map.push((offset, length));
    }
    let padding = consumed.next_multiple_of(BLOCK) - consumed;
    let skipped = io::copy(&mut data.take(padding), &mut io::sink())
        .map_err(|e| format!("reading the sparse map: {e}"))?;
    if skipped != padding {
        return Err("the sparse map ends early".into());
    }
    Ok((map, consumed + padding))
}

/// Checks a map the way Go does: segments in order, not overlapping, within the real size, and
/// holding exactly the data bytes the entry stores.
pub(crate) fn validate(map: &[(u64, u64)], real_size: u64, stored: u64) -> Result<(), String> {
    let mut end = 0u64;
    let mut total = 0u64;
    for &(offset, length) in map {
        let segment_end = offset
            .checked_add(length)
            .ok_or("a sparse segment past the largest size")?;
        if offset < end || segment_end > real_size {
            return Err(
                "sparse segments out of order, overlapping, or past the file's size".into(),
            );
        }
        end = segment_end;
        total = total.saturating_add(length);
    }
    if total != stored {
        return Err(format!(
            "the sparse map holds {total} bytes of data, the entry {stored}"
        ));
    }
    Ok(())
}

/// A sparse file's logical content: data segments from the entry, zeros in the holes.
pub(crate) struct SparseReader<R> {
    data: R,
    map: Vec<(u64, u64)>,
    next_segment: usize,
    position: u64,
    real_size: u64,
}

impl<R: Read> SparseReader<R> {
    pub(crate) fn new(data: R, map: Vec<(u64, u64)>, real_size: u64) -> Self {
        Self {
            data,
            map,
            next_segment: 0,
            position: 0,
            real_size,
        }
    }
}

impl<R: Read> Read for SparseReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(offset, length)) = self.map.get(self.next_segment) {
            if self.position >= offset + length {
                self.next_segment += 1;
                continue;
            }
            let want = buf.len() as u64;
            if self.position < offset {
                let n = want.min(offset - self.position) as usize;
                buf[..n].fill(0);
                self.position += n as u64;
                return Ok(n);
            }
            let n = want.min(offset + length - self.position) as usize;
            let read = self.data.read(&mut buf[..n])?;
            if read == 0 && n > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the sparse file's data ends early",
                ));
            }
            self.position += read as u64;
            return Ok(read);
        }
        let n = (buf.len() as u64).min(self.real_size.saturating_sub(self.position)) as usize;
        buf[..n].fill(0);
        self.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holes_read_as_zeros() {
        let mut reader = SparseReader::new(&b"abXYZ"[..], vec![(2, 2), (6, 3)], 10);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"\0\0ab\0\0XYZ\0");
    }

    #[test]
    fn the_map_in_the_data_is_read_and_its_padding_skipped() {
        let mut data = b"2\n0\n3\n10\n2\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"abcde");
        let mut reader = &data[..];
        let (map, consumed) = read_map(&mut reader).unwrap();
        assert_eq!((map.clone(), consumed), (vec![(0, 3), (10, 2)], 512));
        assert!(validate(&map, 12, 5).is_ok());
        assert!(validate(&map, 11, 5).is_err(), "past the size");
        assert!(validate(&map, 12, 6).is_err(), "data left over");
        assert!(validate(&[(5, 1), (0, 1)], 12, 2).is_err(), "out of order");
        assert!(read_map(&mut &b"1\n0\nx\n"[..]).is_err());
    }

    #[test]
    fn records_of_each_format() {
        let records = |pairs: &[(&str, &str)]| -> Vec<(Vec<u8>, Vec<u8>)> {
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect()
        };
        let v1 = pax_sparse(&records(&[
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.name", "var/lib/big.img"),
            ("GNU.sparse.realsize", "1048576"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(v1.name.as_deref(), Some(&b"var/lib/big.img"[..]));
        assert_eq!((v1.real_size, v1.map), (1_048_576, None));
        let v01 = pax_sparse(&records(&[
            ("GNU.sparse.size", "100"),
            ("GNU.sparse.map", "0,10,50,10"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(v01.map, Some(vec![(0, 10), (50, 10)]));
        let v00 = pax_sparse(&records(&[
            ("GNU.sparse.size", "100"),
            ("GNU.sparse.offset", "0"),
            ("GNU.sparse.numbytes", "4"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(v00.map, Some(vec![(0, 4)]));
        assert_eq!(pax_sparse(&records(&[("path", "x")])).unwrap(), None);
        assert!(
            pax_sparse(&records(&[
                ("GNU.sparse.major", "2"),
                ("GNU.sparse.size", "1")
            ]))
            .is_err()
        );
    }
}
