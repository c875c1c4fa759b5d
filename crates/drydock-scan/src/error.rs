//! Why a scan produced no verdict.

use drydock_layers::{ApplyError, WalkError};
use drydock_registry::{ReferenceError, RegistryError};
use drydock_source::{ErrorClass, SourceError};

/// Why a scan produced no verdict, with the blob and the path it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The argument is no reference, and the source was forced to an engine or a registry.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The argument is neither an existing file nor a reference.
    #[error("{image}: no such file, and {source}")]
    NeitherFileNorReference {
        image: String,
        source: ReferenceError,
    },
    #[error("{layer}: {source}")]
    Walk { layer: String, source: WalkError },
    #[error("{layer}: {source}")]
    Apply { layer: String, source: ApplyError },
    /// Attaching or reading referrers failed at the registry.
    #[error("{what}: {source}")]
    Registry { what: String, source: RegistryError },
    /// `--attach` and `verdict` need an image in a registry, named by reference.
    #[error(
        "{image}: referrers live in a registry; name the image by its reference (docker://REGISTRY/REPOSITORY:TAG)"
    )]
    NotARegistryImage { image: String },
    /// A document read back from the registry is not what it claims to be.
    #[error("{what}: {reason}")]
    Referrer { what: String, reason: String },
}

impl ScanError {
    /// What the caller can do about it: ask again differently, retry later, or nothing (the
    /// image itself is bad).
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Source(e) => e.class(),
            Self::Reference(_) | Self::NeitherFileNorReference { .. } => ErrorClass::Usage,
            Self::Walk {
                source: WalkError::Read(e),
                ..
            } if is_local_io(e) => ErrorClass::Unavailable,
            Self::Walk { .. } | Self::Apply { .. } | Self::Referrer { .. } => ErrorClass::Invalid,
            Self::NotARegistryImage { .. } => ErrorClass::Usage,
            Self::Registry { source, .. } => match source {
                RegistryError::Invalid { .. } => ErrorClass::Invalid,
                _ => ErrorClass::Unavailable,
            },
        }
    }
}

/// A read error from the disk itself, rather than from the content being malformed.
fn is_local_io(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
    )
}
