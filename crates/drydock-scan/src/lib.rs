//! The scan as a library: one image in, one scored report out.
//!
//! This crate owns the data flow that every front end (the `drydock` binary, `drydock serve`)
//! shares: choosing the source from the image argument (a local path or prefix, a local
//! Docker/podman engine, a registry), opening and resolving the image, walking its layers in
//! parallel or as they stream by within the [`Limits`] and one expansion budget, applying them
//! in order with the efficiency measure and the secrets found per layer ([`load`]), and running
//! the checks into a [`Report`] under a gate and a policy ([`report`], or [`scan`] for both),
//! publishing that report next to the image as OCI referrers ([`attach`]) and reading it back
//! for a later gate ([`read_verdicts`]). For a long-lived caller it also walks layers ahead of
//! their scans ([`prefetch`]) and keeps applied base layers in memory ([`Snapshots`]).
//! It takes plain data ([`ScanRequest`]), reports progress through [`ScanProgress`], and fails
//! with a typed [`ScanError`] whose [`class`](ScanError::class) a front end maps as it likes.
//!
//! It must never print, look at a terminal, read a password from standard input, decide an exit
//! code, or look for a policy file: those belong to the front end, which knows its user.

mod attach;
mod error;
mod facts_cache;
mod load;
mod progress;
mod report;
mod request;
mod snapshots;
mod verdict;

pub use attach::{AttachKind, KIND_ANNOTATION, REPORT_ARTIFACT_TYPE, annotations, attach};
pub use drydock_layers::Limits;
pub use drydock_registry::Credential;
pub use drydock_registry::referrers::{Attached, ReferrersMethod};
pub use drydock_report::{Gate, Policy, Report};
pub use drydock_source::{ErrorClass, Platform};
pub use error::ScanError;
pub use facts_cache::{FactsKey, FactsStore};
pub use load::{Scanned, WalkedLayer, load, prefetch};
pub use progress::{FactsCacheEvent, NoProgress, ScanProgress};
pub use report::{catalogue, report, runtime_config, scan};
pub use request::{BlobCacheChoice, RegistryOptions, ScanRequest, SourceChoice, WaitWork};
pub use snapshots::Snapshots;
pub use verdict::{PlatformVerdict, StoredReport, VerdictRequest, Verdicts, read_verdicts};
