use std::io::{self, BufRead, BufReader, Read};

/// How a stream is compressed. Decided from its first bytes, as docker's `DecompressStream`
/// does: media types are only checked for being layer types, because exporters are known to
/// mislabel compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    pub fn sniff(prefix: &[u8]) -> Self {
        match prefix {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            // "BZh" and a block size digit, as docker checks it.
            [b'B', b'Z', b'h', b'1'..=b'9', ..] => Self::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Self::Xz,
            _ => Self::None,
        }
    }

    /// How messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::None => "uncompressed",
            Self::Gzip => "gzip-compressed",
            Self::Zstd => "zstd-compressed",
            Self::Bzip2 => "bzip2-compressed",
            Self::Xz => "xz-compressed",
        }
    }
}

/// Wraps `reader` in the decoder its first bytes call for. Gzip accepts several concatenated
/// members (eStargz and `pigz`-style layers), as the Go runtime's gzip reader does; bzip2 and
/// xz likewise read every stream of a multi-stream file.
pub fn decoder<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let decoded = Decoder::new(reader)?;
    Ok((decoded.compression(), Box::new(decoded)))
}

/// A stream decompressed as its first bytes call for; `Send` when the stream is.
pub enum Decoder<R: Read> {
    None(BufReader<R>),
    Gzip(flate2::bufread::MultiGzDecoder<BufReader<R>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
    Bzip2(bzip2::bufread::MultiBzDecoder<BufReader<R>>),
    Xz(liblzma::bufread::XzDecoder<BufReader<R>>),
}

impl<R: Read> std::fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Decoder({:?})", self.compression())
    }
}

impl<R: Read> Decoder<R> {
    pub fn new(reader: R) -> io::Result<Self> {
        let mut buffered = BufReader::with_capacity(256 * 1024, reader);
        Ok(match Compression::sniff(buffered.fill_buf()?) {
            Compression::None => Self::None(buffered),
            Compression::Gzip => Self::Gzip(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Self::Zstd(zstd::stream::read::Decoder::with_buffer(buffered)?),
            Compression::Bzip2 => Self::Bzip2(bzip2::bufread::MultiBzDecoder::new(buffered)),
            Compression::Xz => Self::Xz(liblzma::bufread::XzDecoder::new_multi_decoder(buffered)),
        })
    }

    pub fn compression(&self) -> Compression {
        match self {
            Self::None(_) => Compression::None,
            Self::Gzip(_) => Compression::Gzip,
            Self::Zstd(_) => Compression::Zstd,
            Self::Bzip2(_) => Compression::Bzip2,
            Self::Xz(_) => Compression::Xz,
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::None(r) => r.read(buf),
            Self::Gzip(r) => r.read(buf),
            Self::Zstd(r) => r.read(buf),
            Self::Bzip2(r) => r.read(buf),
            Self::Xz(r) => r.read(buf),
        }
    }
}

/// What a file that is not a tar archive is, from its first bytes, for messages that must
/// never quote the bytes themselves.
pub fn describe_content(prefix: &[u8]) -> &'static str {
    match Compression::sniff(prefix) {
        Compression::None => {}
        other => return other.describe(),
    }
    let first = prefix.iter().find(|b| !b.is_ascii_whitespace());
    match prefix {
        [] => "an empty file",
        [b'P', b'K', 0x03, 0x04, ..] | [b'P', b'K', 0x05, 0x06, ..] => "a ZIP file",
        [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, ..] => "a 7-Zip archive",
        [b'R', b'a', b'r', b'!', ..] => "a RAR archive",
        [0x7f, b'E', b'L', b'F', ..] => "an ELF file",
        [b'%', b'P', b'D', b'F', ..] => "a PDF document",
        [b'!', b'<', b'a', b'r', b'c', b'h', b'>', ..] => "an ar archive (a .deb?)",
        _ if prefix.starts_with(b"#!/usr/bin/env run-singularity") => "a Singularity (SIF) image",
        _ if matches!(first, Some(b'{') | Some(b'[')) => "a JSON document, not an archive",
        _ if prefix.len() >= 512 && is_tar_header(&prefix[..512]) => "a tar archive",
        _ => "not a tar archive",
    }
}

/// Whether a 512-byte block is a tar header: its checksum field matches its bytes, the test
/// every tar reader applies first.
pub fn is_tar_header(block: &[u8]) -> bool {
    let Ok(block) = <&[u8; 512]>::try_from(block) else {
        return false;
    };
    if block.iter().all(|b| *b == 0) {
        return false;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let Ok(recorded) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|b| u32::from(*b))
        .sum::<u32>()
        + 8 * u32::from(b' ');
    sum == recorded
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn roundtrip(compressed: Vec<u8>, expected: Compression) {
        let (compression, mut reader) = decoder(&compressed[..]).unwrap();
        assert_eq!(compression, expected);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello, layers");
    }

    #[test]
    fn every_compression_docker_reads_is_sniffed_and_decoded() {
        let plain = b"hello, layers".to_vec();
        roundtrip(plain.clone(), Compression::None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        roundtrip(gz.finish().unwrap(), Compression::Gzip);
        roundtrip(zstd::encode_all(&plain[..], 1).unwrap(), Compression::Zstd);
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&plain).unwrap();
        roundtrip(bz.finish().unwrap(), Compression::Bzip2);
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&plain).unwrap();
        roundtrip(xz.finish().unwrap(), Compression::Xz);
    }

    #[test]
    fn non_archives_are_named_without_quoting_them() {
        assert_eq!(describe_content(b"PK\x03\x04rest"), "a ZIP file");
        assert_eq!(
            describe_content(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            "xz-compressed"
        );
        assert_eq!(describe_content(b""), "an empty file");
        assert_eq!(describe_content(b"garbage\x1b[2J"), "not a tar archive");
        assert_eq!(
            describe_content(b"  {\"a\": 1}"),
            "a JSON document, not an archive"
        );
        let mut header = tar::Header::new_gnu();
        header.set_path("a").unwrap();
        header.set_size(0);
        header.set_cksum();
        assert!(is_tar_header(header.as_bytes()));
        let mut broken = header.as_bytes().to_vec();
        broken[0] ^= 1;
        assert!(!is_tar_header(&broken));
    }
}
