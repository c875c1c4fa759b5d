//! Exit codes: a public contract, documented in `docs/exit-codes.md` and the README.

use drydock_source::ErrorClass;

use crate::pipeline::ScanError;

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
    /// A bug in drydock.
    Internal = 70,
}

pub fn failure_status(error: &anyhow::Error) -> ExitStatus {
    match error.downcast_ref::<ScanError>() {
        Some(scan) => match scan.class() {
            ErrorClass::Usage => ExitStatus::Usage,
            ErrorClass::Unavailable => ExitStatus::Unavailable,
            ErrorClass::Invalid => ExitStatus::Invalid,
        },
        None if error.downcast_ref::<std::io::Error>().is_some() => ExitStatus::Unavailable,
        None => ExitStatus::Internal,
    }
}
