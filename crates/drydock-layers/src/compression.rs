use std::io::{self, BufRead, BufReader, Read};

/// How a layer blob is compressed. Decided from the blob's first bytes: media types are only
/// checked for being layer types, because exporters are known to mislabel compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(prefix: &[u8]) -> Self {
        match prefix {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            _ => Self::None,
        }
    }
}

/// Wraps `reader` in the decoder its first bytes call for. Gzip accepts several concatenated
/// members (eStargz and `pigz`-style layers), as the Go runtime's gzip reader does.
pub fn decoder<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let compression = Compression::sniff(buffered.fill_buf()?);
    let decoded: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    };
    Ok((compression, decoded))
}
