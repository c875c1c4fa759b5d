//! `drydock verdict`: the report an earlier `scan --attach` published, read back from the
//! registry and checked against the image it claims to be about, for a gate that does not
//! scan again.

use drydock_registry::referrers::{self, CREATED, ReferrersMethod};
use drydock_registry::{Reference, RegistryClient, RegistryError};
use drydock_report::Report;
use drydock_source::Platform;
use serde_json::Value;

use crate::attach::{KIND_ANNOTATION, REPORT_ARTIFACT_TYPE};
use crate::error::ScanError;
use crate::load::client_options;
use crate::request::RegistryOptions;

/// Report documents larger than this are refused.
const MAX_REPORT: u64 = 64 << 20;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// What to look up.
#[derive(Debug, Clone)]
pub struct VerdictRequest {
    /// A registry reference, by tag or digest (`docker://` allowed).
    pub image: String,
    pub registry: RegistryOptions,
    /// For an index, the one platform to check; all of them otherwise.
    pub platform: Option<Platform>,
}

/// The stored verdict of one image manifest.
#[derive(Debug, Clone)]
pub struct PlatformVerdict {
    /// The platform the index lists (none for a single manifest).
    pub platform: Option<Platform>,
    /// The image manifest's digest: the subject the report must name.
    pub digest: String,
    /// The newest valid drydock report attached to it.
    pub found: Option<StoredReport>,
    /// Referrers passed over, and why (a report about another digest, a malformed one).
    pub refused: Vec<String>,
}

/// A report read back from the registry.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub report: Report,
    /// The referrer manifest's digest.
    pub referrer: String,
    pub method: ReferrersMethod,
}

/// The reference as given, resolved to its manifest, and the verdict of every image manifest
/// under it.
#[derive(Debug, Clone)]
pub struct Verdicts {
    pub reference: String,
    /// The digest REF resolved to (an index's, for a multi-platform image).
    pub digest: String,
    pub images: Vec<PlatformVerdict>,
}

fn registry_error(what: &str) -> impl Fn(RegistryError) -> ScanError + '_ {
    move |source| ScanError::Registry {
        what: what.to_owned(),
        source,
    }
}

/// Resolves `request.image` and reads the stored report of each image manifest.
pub fn read_verdicts(request: &VerdictRequest) -> Result<Verdicts, ScanError> {
    let name = request
        .image
        .strip_prefix("docker://")
        .unwrap_or(&request.image);
    if name.starts_with(['/', '.']) || std::path::Path::new(name).exists() {
        return Err(ScanError::NotARegistryImage {
            image: request.image.clone(),
        });
    }
    let reference = Reference::parse(name)?;
    let client = RegistryClient::connect(&reference, &client_options(&request.registry))
        .map_err(registry_error(&request.image))?;
    let (bytes, media_type, digest) = client
        .manifest(reference.manifest_reference())
        .map_err(registry_error(&request.image))?;
    let document: Value = serde_json::from_slice(&bytes).map_err(|e| ScanError::Referrer {
        what: format!("{reference}"),
        reason: format!("the manifest is not JSON: {e}"),
    })?;
    let declared = document
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(media_type);
    let is_index = declared
        .as_deref()
        .is_some_and(|t| INDEX_TYPES.contains(&t))
        || (declared.is_none() && document.get("manifests").is_some());
    let targets: Vec<(Option<Platform>, String)> = if is_index {
        index_images(&document, request.platform.as_ref(), &reference)?
    } else {
        vec![(None, digest.clone())]
    };
    let images = targets
        .into_iter()
        .map(|(platform, digest)| {
            let (found, refused) = stored_report(&client, &digest)?;
            Ok(PlatformVerdict {
                platform,
                digest,
                found,
                refused,
            })
        })
        .collect::<Result<_, ScanError>>()?;
    Ok(Verdicts {
        reference: reference.to_string(),
        digest,
        images,
    })
}

/// The image manifests of an index: every platform, or the one asked for. Attestation
/// manifests (`unknown/unknown`) and artifacts are not images.
fn index_images(
    index: &Value,
    wanted: Option<&Platform>,
    reference: &Reference,
) -> Result<Vec<(Option<Platform>, String)>, ScanError> {
    let mut images = Vec::new();
    for entry in index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if entry.get("artifactType").is_some() {
            continue;
        }
        let Some(digest) = entry.get("digest").and_then(Value::as_str) else {
            continue;
        };
        let platform = entry.get("platform").map(|p| {
            let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            Platform::new(
                field("os"),
                field("architecture"),
                p.get("variant").and_then(Value::as_str),
            )
        });
        if platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown")
        {
            continue;
        }
        if let Some(wanted) = wanted
            && !platform.as_ref().is_some_and(|p| p.satisfies(wanted))
        {
            continue;
        }
        images.push((platform, digest.to_owned()));
    }
    if images.is_empty() {
        return Err(ScanError::Referrer {
            what: reference.to_string(),
            reason: match wanted {
                Some(wanted) => format!("the index has no image for {wanted}"),
                None => "the index lists no image".into(),
            },
        });
    }
    Ok(images)
}

/// The newest drydock report attached to `digest` whose subject and content both name it.
fn stored_report(
    client: &RegistryClient,
    digest: &str,
) -> Result<(Option<StoredReport>, Vec<String>), ScanError> {
    let what = format!(
        "referrers of {}/{}@{digest}",
        client.reference().registry,
        client.reference().repository
    );
    let (method, descriptors) = referrers::list(client, digest).map_err(registry_error(&what))?;
    let mut candidates: Vec<&Value> = descriptors
        .iter()
        .filter(|d| d.get("artifactType").and_then(Value::as_str) == Some(REPORT_ARTIFACT_TYPE))
        .filter(|d| {
            d.pointer(&format!(
                "/annotations/{}",
                KIND_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .is_none_or(|kind| kind == "report")
        })
        .collect();
    // Newest first, by the creation annotation (RFC 3339 UTC sorts as text).
    candidates.sort_by(|a, b| {
        let created = |d: &Value| {
            d.pointer(&format!("/annotations/{}", CREATED))
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        };
        created(b).cmp(&created(a))
    });
    let mut refused = Vec::new();
    for descriptor in candidates {
        let Some(referrer) = descriptor.get("digest").and_then(Value::as_str) else {
            continue;
        };
        match read_report(client, referrer, digest) {
            Ok(report) => {
                return Ok((
                    Some(StoredReport {
                        report,
                        referrer: referrer.to_owned(),
                        method,
                    }),
                    refused,
                ));
            }
            Err(ScanError::Referrer { reason, .. }) => {
                log::warn!("passing over the report {referrer}: {reason}");
                refused.push(format!("{referrer}: {reason}"));
            }
            Err(e) => return Err(e),
        }
    }
    Ok((None, refused))
}

fn read_report(
    client: &RegistryClient,
    referrer: &str,
    subject: &str,
) -> Result<Report, ScanError> {
    let what = format!(
        "{}/{}@{referrer}",
        client.reference().registry,
        client.reference().repository
    );
    let refuse = |reason: String| ScanError::Referrer {
        what: what.clone(),
        reason,
    };
    let (bytes, _, _) = client.manifest(referrer).map_err(registry_error(&what))?;
    let manifest: Value =
        serde_json::from_slice(&bytes).map_err(|e| refuse(format!("not JSON: {e}")))?;
    let claimed = manifest
        .pointer("/subject/digest")
        .and_then(Value::as_str)
        .unwrap_or("none");
    if claimed != subject {
        return Err(refuse(format!(
            "its subject is {claimed}, not the image {subject}"
        )));
    }
    let layers = manifest.get("layers").and_then(Value::as_array);
    let layer = match layers.map(Vec::as_slice) {
        Some([layer]) => layer,
        _ => return Err(refuse("a report artifact has exactly one layer".into())),
    };
    let layer_digest = layer
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("its layer has no digest".into()))?;
    let content = client
        .blob_bytes(layer_digest, MAX_REPORT)
        .map_err(registry_error(&what))?;
    let report: Report = serde_json::from_slice(&content)
        .map_err(|e| refuse(format!("not a drydock report: {e}")))?;
    if report.schema_version > drydock_report::SCHEMA_VERSION {
        return Err(refuse(format!(
            "report schema {} is newer than this drydock's {}; upgrade drydock",
            report.schema_version,
            drydock_report::SCHEMA_VERSION
        )));
    }
    if report.image.manifest_digest.as_deref() != Some(subject) {
        return Err(refuse(format!(
            "the report is about {}, not the image {subject}",
            report
                .image
                .manifest_digest
                .as_deref()
                .unwrap_or("an image without a manifest digest")
        )));
    }
    Ok(report)
}
