use std::io;
use std::path::PathBuf;

/// What a caller can do about an error: the binary maps each class to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The user asked for something that is not there to choose (`--image`, `--platform`).
    Usage,
    /// The image could not be read (missing file, permission, I/O).
    Unavailable,
    /// The image is malformed, lies about itself, or fails verification.
    Invalid,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not an image: {reason}", path.display())]
    NotAnImage { path: PathBuf, reason: String },
    #[error("{blob}: {reason}")]
    Invalid { blob: String, reason: String },
    #[error("{blob}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        blob: String,
        expected: String,
        actual: String,
    },
    #[error("{blob}: size mismatch: the manifest says {expected} bytes, the blob has {actual}")]
    SizeMismatch {
        blob: String,
        expected: u64,
        actual: u64,
    },
    #[error("{blob}: not a container image: {reason}")]
    NotAContainerImage { blob: String, reason: String },
    #[error("{blob}: unsupported: {reason}")]
    Unsupported { blob: String, reason: String },
    #[error("{0}")]
    Selection(String),
    /// A remote source (registry, engine) could not give what was asked.
    #[error("{0}")]
    Unavailable(String),
    #[error("invalid image name `{input}`: {reason}")]
    BadSpec { input: String, reason: String },
}

impl SourceError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Io { .. } | Self::Unavailable(_) => ErrorClass::Unavailable,
            Self::Selection(_) | Self::BadSpec { .. } | Self::NotAContainerImage { .. } => {
                ErrorClass::Usage
            }
            _ => ErrorClass::Invalid,
        }
    }

    pub(crate) fn invalid(blob: impl Into<String>, reason: impl Into<String>) -> Self {
        let blob = blob.into();
        Self::Invalid {
            // A message never starts with an empty name.
            blob: if blob.is_empty() {
                "(a member with an empty name)".into()
            } else {
                blob
            },
            reason: reason.into(),
        }
    }
}
