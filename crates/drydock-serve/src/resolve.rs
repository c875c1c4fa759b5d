//! References to digests through the registry (`drydock-registry`'s blocking client, so only
//! ever called from a worker thread or `spawn_blocking`), and what a manifest is: an image, an
//! index of images, or an artifact.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drydock_registry::{ClientOptions, Credential, Reference, RegistryClient};

use crate::config::Config;
use crate::hooks::{EMPTY_CONFIG, IMAGE_CONFIG_TYPES, INDEX_TYPES};
use crate::store::Child;

/// What a manifest document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest whose config is an image config.
    Image,
    /// An index: its image children with their platforms (attestations, artifacts and
    /// `unknown/unknown` entries left out).
    Index(Vec<Child>),
    /// Not a container image (its config type).
    Artifact(String),
}

/// A reference resolved to a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub digest: String,
    pub kind: ManifestKind,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Document {
    media_type: Option<String>,
    config: Option<DocDescriptor>,
    manifests: Option<Vec<DocDescriptor>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct DocDescriptor {
    media_type: String,
    digest: String,
    artifact_type: Option<String>,
    platform: Option<DocPlatform>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct DocPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// Reads a manifest or index document; `header` is the `Content-Type` it came with.
pub fn manifest_kind(bytes: &[u8], header: Option<&str>) -> Result<ManifestKind, String> {
    let document: Document =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let media_type = document
        .media_type
        .clone()
        .or_else(|| header.map(str::to_owned))
        .unwrap_or_default();
    if INDEX_TYPES.contains(&media_type.as_str()) || document.manifests.is_some() {
        let children = document
            .manifests
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.artifact_type.is_none())
            .filter(|m| crate::hooks::MANIFEST_TYPES.contains(&m.media_type.as_str()))
            .filter_map(|m| {
                let platform = m.platform?;
                if platform.os.is_empty() || platform.os == "unknown" {
                    return None;
                }
                let platform = match platform.variant.filter(|v| !v.is_empty()) {
                    Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
                    None => format!("{}/{}", platform.os, platform.architecture),
                };
                Some(Child {
                    digest: m.digest,
                    platform,
                })
            })
            .collect();
        return Ok(ManifestKind::Index(children));
    }
    let config = document.config.map(|c| c.media_type).unwrap_or_default();
    if config == EMPTY_CONFIG || !IMAGE_CONFIG_TYPES.contains(&config.as_str()) {
        return Ok(ManifestKind::Artifact(config));
    }
    Ok(ManifestKind::Image)
}

/// How to connect to `registry` under `config`, with `credential` overriding the configured
/// one (a Harbor robot account).
pub fn client_options(
    config: &Config,
    registry: &str,
    plain_http: bool,
    credential: Option<Credential>,
) -> Result<ClientOptions, String> {
    let host = config.registry(registry);
    let mut ca_certs = config.ca_certs.clone();
    if let Some(host) = host {
        ca_certs.extend(host.ca_certs.iter().cloned());
    }
    let credential = match credential {
        Some(credential) => Some(credential),
        None => config.credential(registry).map_err(|e| e.to_string())?,
    };
    Ok(ClientOptions {
        ca_certs,
        insecure: plain_http || host.is_some_and(|h| h.insecure),
        credential,
        attempts: Some(2),
        ..ClientOptions::default()
    })
}

/// Fetches `reference`'s manifest: its digest and kind. Blocking.
pub fn fetch(reference: &Reference, options: &ClientOptions) -> Result<Resolved, String> {
    let client = RegistryClient::connect(reference, options).map_err(|e| e.to_string())?;
    let (bytes, media_type, digest) = client
        .manifest(reference.manifest_reference())
        .map_err(|e| e.to_string())?;
    let kind = manifest_kind(&bytes, media_type.as_deref())?;
    Ok(Resolved { digest, kind })
}

/// Tags resolved recently, so that admission does not ask the registry for every pod.
#[derive(Debug, Default)]
pub struct ResolveCache {
    entries: Mutex<HashMap<String, (Instant, Resolved)>>,
}

impl ResolveCache {
    pub fn get(&self, key: &str, ttl: Duration) -> Option<Resolved> {
        let entries = self.entries.lock().ok()?;
        let (at, resolved) = entries.get(key)?;
        (at.elapsed() < ttl).then(|| resolved.clone())
    }

    pub fn put(&self, key: &str, resolved: Resolved, ttl: Duration) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 4096 {
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            entries.insert(key.to_owned(), (Instant::now(), resolved));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_indexes_and_artifacts_are_told_apart() {
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":1},"layers":[]}"#;
        assert_eq!(manifest_kind(image, None).unwrap(), ManifestKind::Image);
        let docker = br#"{"schemaVersion":2,
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:c","size":1},"layers":[]}"#;
        assert_eq!(
            manifest_kind(
                docker,
                Some("application/vnd.docker.distribution.manifest.v2+json")
            )
            .unwrap(),
            ManifestKind::Image
        );
        let artifact = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "artifactType":"application/vnd.drydock.report.v1+json",
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:e","size":2},"layers":[]}"#;
        assert_eq!(
            manifest_kind(artifact, None).unwrap(),
            ManifestKind::Artifact(EMPTY_CONFIG.into())
        );
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:att","size":1,"platform":{"os":"unknown","architecture":"unknown"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:sig","size":1,"artifactType":"application/sarif+json"}]}"#;
        assert_eq!(
            manifest_kind(index, None).unwrap(),
            ManifestKind::Index(vec![
                Child {
                    digest: "sha256:a".into(),
                    platform: "linux/amd64".into()
                },
                Child {
                    digest: "sha256:b".into(),
                    platform: "linux/arm/v7".into()
                },
            ])
        );
        assert!(manifest_kind(b"not json", None).is_err());
    }
}
