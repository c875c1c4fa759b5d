//! The Harbor pluggable scanner API v1.2: request validation and response shapes.
//!
//! Facts from the spec (`scanner-adapter-openapi-v1.2.yaml`) and Harbor's client: the scan
//! request is answered 202 with `{"id"}`, 400 for a body that is not JSON, 422 for a missing
//! field; errors are `{"error":{"message"}}` with their own MIME type; the report endpoint
//! answers 302 with `Refresh-After` (the only header Harbor reads) while the scan runs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use drydock_registry::{Credential, Secret};
use drydock_report::harbor::{GENERIC_REPORT_MIME, HARBOR_REPORT_MIME, HarborFlavour};

use crate::hooks::registry_name;

pub const METADATA_MIME_1_0: &str = "application/vnd.scanner.adapter.metadata+json; version=1.0";
pub const METADATA_MIME_1_1: &str = "application/vnd.scanner.adapter.metadata+json; version=1.1";
pub const SCAN_RESPONSE_MIME: &str =
    "application/vnd.scanner.adapter.scan.response+json; version=1.0";
pub const ERROR_MIME: &str = "application/vnd.scanner.adapter.error+json; version=1.0";
/// The manifests a Harbor scanner says it reads.
pub const CONSUMES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// Seconds Harbor should wait before asking for a report again.
pub const REFRESH_AFTER: u32 = 5;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ScanRequestBody {
    registry: Option<RegistryBody>,
    artifact: Option<ArtifactBody>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct RegistryBody {
    url: Option<String>,
    authorization: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ArtifactBody {
    repository: Option<String>,
    digest: Option<String>,
    tag: Option<String>,
    mime_type: Option<String>,
}

/// How Harbor lets the scanner pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No `authorization`: anonymous, or the credential configured for the host.
    Configured,
    /// `Basic base64(robot:secret)`.
    Basic(Credential),
    /// `Bearer <token>`, already exchanged by Harbor for a pull of this repository.
    Bearer(Secret),
}

/// A valid scan request.
#[derive(Debug, Clone)]
pub struct HarborScan {
    /// `host[:port]` as a reference names it.
    pub registry: String,
    /// Harbor gave an `http://` URL (its internal address).
    pub plain_http: bool,
    pub repository: String,
    pub digest: String,
    pub tag: Option<String>,
    pub mime_type: Option<String>,
    pub access: Access,
}

/// Why a request was refused: its status (400 or 422) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn unprocessable(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 422,
        message: message.into(),
    }
}

fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The access `authorization` grants.
fn access(authorization: Option<&str>) -> Result<Access, Refusal> {
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Access::Configured);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                unprocessable(
                    "registry.authorization: Basic credentials are not base64 of user:password",
                )
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            unprocessable("registry.authorization: Basic credentials have no `:`")
        })?;
        return Ok(Access::Basic(Credential::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        }));
    }
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Access::Bearer(Secret::new(rest)));
    }
    Err(unprocessable(
        "registry.authorization: neither `Basic …` nor `Bearer …`",
    ))
}

/// Validates a scan request body.
pub fn parse_scan_request(body: &[u8]) -> Result<HarborScan, Refusal> {
    let request: ScanRequestBody = serde_json::from_slice(body).map_err(|e| Refusal {
        status: 400,
        message: format!("the body is not a scan request: {e}"),
    })?;
    let registry = request.registry.unwrap_or_default();
    let artifact = request.artifact.unwrap_or_default();
    let url = registry
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| unprocessable("missing registry.url"))?;
    let repository = artifact
        .repository
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| unprocessable("missing artifact.repository"))?;
    let digest = artifact
        .digest
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| unprocessable("missing artifact.digest"))?;
    if !is_digest(&digest) {
        return Err(unprocessable(format!(
            "artifact.digest `{digest}` is not a digest"
        )));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| unprocessable(format!("registry.url `{url}` is not a URL")))?;
    let plain_http = match scheme.to_ascii_lowercase().as_str() {
        "http" => true,
        "https" => false,
        _ => {
            return Err(unprocessable(format!(
                "registry.url `{url}` is neither http nor https"
            )));
        }
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(unprocessable(format!("registry.url `{url}` has no host")));
    }
    Ok(HarborScan {
        registry: registry_name(host, plain_http),
        plain_http,
        repository,
        digest,
        tag: artifact.tag.filter(|t| !t.is_empty()),
        mime_type: artifact.mime_type.filter(|m| !m.is_empty()),
        access: access(registry.authorization.as_deref())?,
    })
}

/// The report flavour an `Accept` header asks for: Harbor's native one when it names none or
/// any; `None` when it names only types drydock does not write.
pub fn flavour(accept: Option<&str>) -> Option<HarborFlavour> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(HarborFlavour::Harbor);
    };
    let wants = |mime: &str| {
        let essence = mime.split(';').next().unwrap_or(mime);
        accept
            .split(',')
            .any(|part| part.split(';').next().unwrap_or("").trim() == essence)
    };
    if wants(GENERIC_REPORT_MIME) {
        Some(HarborFlavour::Generic)
    } else if wants(HARBOR_REPORT_MIME) || wants("*/*") || wants("application/json") {
        Some(HarborFlavour::Harbor)
    } else {
        None
    }
}

/// The metadata answer: the `Accept`ed version (1.1 unless 1.0 is asked for) and its body.
pub fn metadata(
    accept: Option<&str>,
    version: &str,
    policy_digest: &str,
) -> (&'static str, serde_json::Value) {
    let mime = if accept.is_some_and(|a| a.contains("version=1.0") && !a.contains("version=1.1")) {
        METADATA_MIME_1_0
    } else {
        METADATA_MIME_1_1
    };
    let body = serde_json::json!({
        "scanner": {"name": "drydock", "vendor": "drydock", "version": version},
        "capabilities": [{
            "type": "vulnerability",
            "consumes_mime_types": CONSUMES,
            "produces_mime_types": [HARBOR_REPORT_MIME, GENERIC_REPORT_MIME],
        }],
        "properties": {
            "harbor.scanner-adapter/scanner-type": "image-hygiene",
            "harbor.scanner-adapter/vulnerability-database-updated-at": "1970-01-01T00:00:00Z",
            "dev.drydock/version": version,
            "dev.drydock/policy-digest": policy_digest,
        },
    });
    (mime, body)
}

/// `{"error":{"message": …}}`.
pub fn error_body(message: &str) -> String {
    serde_json::json!({"error": {"message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn request(registry: serde_json::Value, artifact: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"registry": registry, "artifact": artifact}))
            .unwrap()
    }

    #[test]
    fn a_full_request_with_basic_credentials() {
        let auth = format!("Basic {}", STANDARD.encode("robot$scan:pw:with:colons"));
        let scan = parse_scan_request(&request(
            serde_json::json!({"url": "http://harbor-core", "authorization": auth}),
            serde_json::json!({"repository": "library/app", "digest": DIGEST, "tag": "1",
                "mime_type": "application/vnd.oci.image.manifest.v1+json"}),
        ))
        .unwrap();
        assert_eq!(scan.registry, "harbor-core:80");
        assert!(scan.plain_http);
        assert_eq!(scan.repository, "library/app");
        assert_eq!(
            scan.access,
            Access::Basic(Credential::Basic {
                username: "robot$scan".into(),
                password: Secret::new("pw:with:colons"),
            })
        );
        let scan = parse_scan_request(&request(
            serde_json::json!({"url": "https://core.harbor.domain:8443/", "authorization": "Bearer abc.def"}),
            serde_json::json!({"repository": "library/app", "digest": DIGEST}),
        ))
        .unwrap();
        assert_eq!(scan.registry, "core.harbor.domain:8443");
        assert!(!scan.plain_http);
        assert_eq!(scan.access, Access::Bearer(Secret::new("abc.def")));
        // The secret never shows in a Debug string.
        assert!(!format!("{scan:?}").contains("abc.def"));
    }

    #[test]
    fn bad_json_is_400_and_missing_fields_422() {
        assert_eq!(parse_scan_request(b"{not json").unwrap_err().status, 400);
        for (registry, artifact, field) in [
            (
                serde_json::json!({}),
                serde_json::json!({"repository": "a", "digest": DIGEST}),
                "registry.url",
            ),
            (
                serde_json::json!({"url": "https://h.example"}),
                serde_json::json!({"digest": DIGEST}),
                "artifact.repository",
            ),
            (
                serde_json::json!({"url": "https://h.example"}),
                serde_json::json!({"repository": "a"}),
                "artifact.digest",
            ),
            (
                serde_json::json!({"url": "https://h.example"}),
                serde_json::json!({"repository": "a", "digest": "latest"}),
                "artifact.digest",
            ),
            (
                serde_json::json!({"url": "ftp://h.example"}),
                serde_json::json!({"repository": "a", "digest": DIGEST}),
                "registry.url",
            ),
            (
                serde_json::json!({"url": "https://h.example", "authorization": "Digest x"}),
                serde_json::json!({"repository": "a", "digest": DIGEST}),
                "registry.authorization",
            ),
        ] {
            let refusal = parse_scan_request(&request(registry, artifact)).unwrap_err();
            assert_eq!(refusal.status, 422, "{field}");
            assert!(
                refusal.message.contains(field),
                "{field}: {}",
                refusal.message
            );
        }
    }

    #[test]
    fn accept_headers_pick_the_flavour() {
        assert_eq!(flavour(None), Some(HarborFlavour::Harbor));
        assert_eq!(
            flavour(Some(HARBOR_REPORT_MIME)),
            Some(HarborFlavour::Harbor)
        );
        assert_eq!(
            flavour(Some(GENERIC_REPORT_MIME)),
            Some(HarborFlavour::Generic)
        );
        assert_eq!(
            flavour(Some(
                "application/vnd.security.vulnerability.report; version=1.1, */*"
            )),
            Some(HarborFlavour::Generic)
        );
        assert_eq!(flavour(Some("application/spdx+json")), None);
        let (mime, body) = metadata(Some(METADATA_MIME_1_0), "1.2.3", "none");
        assert_eq!(mime, METADATA_MIME_1_0);
        assert_eq!(body["scanner"]["version"], "1.2.3");
        assert_eq!(metadata(None, "1", "none").0, METADATA_MIME_1_1);
    }
}
