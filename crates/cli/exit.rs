//! Exit codes: a public contract, documented in `docs/exit-codes.md` and the README.

use drydock_scan::{ErrorClass, ScanError};

/// What the process tells its caller. Anything but 0 and 1 means "no verdict": a pipeline
/// chooses whether that blocks (fail closed) or not (fail open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The scan ran and the gate passed.
    Passed = 0,
    /// The scan ran and the gate failed.
    GateFailed = 1,
    /// The command line was wrong, or asked for an image the source does not hold
    /// (clap also exits with 2 on usage errors).
    Usage = 2,
    /// The image could not be read: no such file, permission denied, I/O error.
    Unavailable = 3,
    /// The image is malformed, truncated, or fails digest verification.
    Invalid = 4,
    /// `verdict`: no drydock report is attached to the image, or the newest is older than
    /// `--max-age`.
    NoVerdict = 5,
    /// A bug in drydock.
    Internal = 70,
}

/// A mistake the binary itself finds in what it was asked: a policy file, an output path, a
/// check id, a file inside the image.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn failure_status(error: &anyhow::Error) -> ExitStatus {
    if let Some(scan) = error.downcast_ref::<ScanError>() {
        return match scan.class() {
            ErrorClass::Usage => ExitStatus::Usage,
            ErrorClass::Unavailable => ExitStatus::Unavailable,
            ErrorClass::Invalid => ExitStatus::Invalid,
        };
    }
    if error.downcast_ref::<UsageError>().is_some() {
        ExitStatus::Usage
    } else if error.downcast_ref::<std::io::Error>().is_some() {
        ExitStatus::Unavailable
    } else {
        ExitStatus::Internal
    }
}
