//! `--attach`: the verdict published next to the image, as OCI referrers of the scanned
//! manifest (the report, the SARIF, the in-toto statement), so that later gates read it back
//! ([`crate::verdict`]) instead of scanning again.

use std::collections::BTreeMap;

use drydock_registry::referrers::{self, Artifact, Attached, CREATED, Subject};
use drydock_registry::{RegistryClient, RegistryError};
use drydock_report::Report;

use crate::error::ScanError;
use crate::load::{Origin, client_options, origin};
use crate::request::ScanRequest;

/// The artifact type of drydock's JSON report as a referrer.
pub const REPORT_ARTIFACT_TYPE: &str = "application/vnd.drydock.report.v1+json";
/// The annotation naming which drydock document a referrer is: `report`, `sarif`, `intoto`.
pub const KIND_ANNOTATION: &str = "dev.drydock.kind";

/// A document `--attach` can push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttachKind {
    /// The JSON report (`application/vnd.drydock.report.v1+json`), what `drydock verdict` reads.
    Report,
    /// SARIF 2.1.0 (`application/sarif+json`), as Ratify's and trivy's referrers are.
    Sarif,
    /// The unsigned in-toto statement (`application/vnd.in-toto+json`), for `cosign attest`.
    Intoto,
}

impl AttachKind {
    pub const ALL: [AttachKind; 3] = [Self::Report, Self::Sarif, Self::Intoto];

    pub fn name(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Sarif => "sarif",
            Self::Intoto => "intoto",
        }
    }

    pub fn artifact_type(self) -> &'static str {
        match self {
            Self::Report => REPORT_ARTIFACT_TYPE,
            Self::Sarif => "application/sarif+json",
            Self::Intoto => "application/vnd.in-toto+json",
        }
    }

    fn render(self, report: &Report) -> String {
        match self {
            Self::Report => drydock_report::render_json(report),
            Self::Sarif => drydock_report::render_sarif(report),
            Self::Intoto => drydock_report::render_intoto(report),
        }
    }
}

/// The annotations of every drydock referrer: when (Ratify needs it), the verdict in brief,
/// which drydock and which policy made it.
pub fn annotations(report: &Report, kind: AttachKind) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CREATED.to_owned(), report.scanned_at.clone()),
        (KIND_ANNOTATION.to_owned(), kind.name().to_owned()),
        ("dev.drydock.score".to_owned(), report.score.to_string()),
        (
            "dev.drydock.grade".to_owned(),
            format!("{:?}", report.grade),
        ),
        (
            "dev.drydock.gate".to_owned(),
            if report.passed { "pass" } else { "fail" }.to_owned(),
        ),
        (
            "dev.drydock.version".to_owned(),
            report.tool.version.clone(),
        ),
        (
            "dev.drydock.policy".to_owned(),
            report
                .policy
                .as_ref()
                .map_or_else(|| "none".to_owned(), |p| p.digest.clone()),
        ),
        (
            "org.opencontainers.image.description".to_owned(),
            format!("drydock {} of the image", kind.name()),
        ),
    ])
}

fn registry_error(what: &str, error: RegistryError) -> ScanError {
    let error = match error {
        RegistryError::Unauthorized { what, reason } => RegistryError::Unauthorized {
            what,
            reason: format!(
                "{reason}; attaching needs push access to the repository (docker login with an account that may push)"
            ),
        },
        other => other,
    };
    ScanError::Registry {
        what: what.to_owned(),
        source: error,
    }
}

/// Pushes the `kinds` of `report` as referrers of the manifest the scan of `request` read.
/// The image must have come from a registry (the report's manifest digest is the subject).
pub fn attach(
    request: &ScanRequest,
    report: &Report,
    kinds: &[AttachKind],
) -> Result<Attached, ScanError> {
    let reference = match origin(request)? {
        Origin::Registry(reference) => reference,
        _ => {
            return Err(ScanError::NotARegistryImage {
                image: request.image.clone(),
            });
        }
    };
    let digest =
        report
            .image
            .manifest_digest
            .clone()
            .ok_or_else(|| ScanError::NotARegistryImage {
                image: request.image.clone(),
            })?;
    let mut options = client_options(&request.registry);
    options.push = true;
    let what = format!(
        "attaching to {}/{}@{digest}",
        reference.registry, reference.repository
    );
    let client =
        RegistryClient::connect(&reference, &options).map_err(|e| registry_error(&what, e))?;
    let (bytes, media_type, _) = client
        .manifest(&digest)
        .map_err(|e| registry_error(&what, e))?;
    let subject = Subject {
        digest: digest.clone(),
        media_type: media_type
            .unwrap_or_else(|| drydock_registry::referrers::OCI_MANIFEST.to_owned()),
        size: bytes.len() as u64,
    };
    let artifacts: Vec<Artifact> = kinds
        .iter()
        .map(|&kind| Artifact {
            artifact_type: kind.artifact_type().to_owned(),
            layer_media_type: kind.artifact_type().to_owned(),
            content: kind.render(report).into_bytes(),
            annotations: annotations(report, kind),
            slot_key: KIND_ANNOTATION.to_owned(),
        })
        .collect();
    referrers::attach(&client, &subject, &artifacts).map_err(|e| registry_error(&what, e))
}
