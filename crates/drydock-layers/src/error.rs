use std::io;

/// Why a layer could not be walked. The caller adds which blob it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    #[error("reading tar entry `{path}`: {source}")]
    Entry { path: String, source: io::Error },
    #[error("the layer ends inside the data of `{path}`: the blob is truncated")]
    Truncated { path: String },
    #[error("the layer ends inside the tar header that follows `{after}`: the blob is truncated")]
    TruncatedHeader { after: String },
    #[error("reading the layer: {0}")]
    Read(#[source] io::Error),
    #[error("tar entry `{path}`: {reason}")]
    BadEntry { path: String, reason: String },
    #[error("the layer holds more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("the layer expands to more than {limit} bytes (raise the limit with --max-layer-size)")]
    TooLarge { limit: u64 },
    #[error(
        "the image expands to more than {ratio} times its compressed size past the first \
         {allowance} bytes: a decompression bomb? (raise the limit with --max-expansion)"
    )]
    Expansion { ratio: u64, allowance: u64 },
}

impl WalkError {
    pub(crate) fn bad(path: &[u8], reason: impl Into<String>) -> Self {
        Self::BadEntry {
            path: crate::path::for_message(path),
            reason: reason.into(),
        }
    }
}

/// Why a walked layer could not be applied on top of the ones below it.
#[derive(Debug, thiserror::Error)]
#[error("tar entry `{path}`: {reason}")]
pub struct ApplyError {
    pub path: String,
    pub reason: String,
}

impl ApplyError {
    pub(crate) fn new(path: &[u8], reason: impl Into<String>) -> Self {
        Self {
            path: crate::path::for_message(path),
            reason: reason.into(),
        }
    }
}
