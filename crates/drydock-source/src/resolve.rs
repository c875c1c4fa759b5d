use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::SourceError;
use crate::platform::Platform;
use crate::spec::Location;
use crate::store::{BlobStore, MAX_DOCUMENT};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Nesting of indexes we follow before calling it a loop.
const MAX_INDEX_DEPTH: usize = 4;

/// Which image to take from a source holding several.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// `NAME[:TAG]` (docker-archive `RepoTags`), an OCI tag (`ref.name`), or a manifest digest.
    pub reference: Option<String>,
    /// An explicit platform; without one an index resolves to the host's, as docker does.
    pub platform: Option<Platform>,
}

/// The layout an image was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// `docker save` output: `manifest.json` (legacy, or Docker 25+ with an OCI layout inside).
    DockerArchive,
    /// An OCI image layout: `index.json` and `blobs/`.
    Oci,
}

/// One image, found and verified down to its config; its layers still to be read.
#[derive(Debug)]
pub struct Image {
    pub format: ImageFormat,
    pub reference: Option<String>,
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    pub config: ImageConfiguration,
    pub platform: Platform,
    pub layers: Vec<Layer>,
    /// Things worth telling the user that do not stop the scan (an absent foreign layer).
    pub notes: Vec<String>,
}

/// A layer as the manifest and config describe it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub index: usize,
    /// The member of the archive or layout holding the blob; `None` for a foreign layer
    /// that is not shipped with the image.
    pub blob: Option<String>,
    /// The blob's digest when the format records it (OCI, Docker 25+), `sha256:…`.
    pub digest: Option<String>,
    /// The digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: String,
    pub size: Option<u64>,
    pub media_type: Option<String>,
    /// The history entry (`created_by`) that made the layer.
    pub created_by: Option<String>,
    pub foreign: bool,
}

impl Layer {
    /// How messages name this layer: its blob digest, else its archive member.
    pub fn label(&self) -> String {
        match (&self.digest, &self.blob) {
            (Some(digest), _) => format!("layer {} ({digest})", self.index),
            (None, Some(blob)) => format!("layer {} ({blob})", self.index),
            (None, None) => format!("layer {} ({})", self.index, self.diff_id),
        }
    }

    /// Checks what a walk of the blob measured against what the image declares.
    pub fn verify(
        &self,
        blob_digest: &str,
        blob_size: u64,
        diff_id: &str,
    ) -> Result<(), SourceError> {
        if let Some(size) = self.size
            && size != blob_size
        {
            return Err(SourceError::SizeMismatch {
                blob: self.label(),
                expected: size,
                actual: blob_size,
            });
        }
        if let Some(expected) = &self.digest
            && expected != blob_digest
        {
            return Err(SourceError::DigestMismatch {
                blob: self.label(),
                expected: expected.clone(),
                actual: blob_digest.to_owned(),
            });
        }
        if self.diff_id != diff_id {
            return Err(SourceError::DigestMismatch {
                blob: format!("{} uncompressed (diff_id)", self.label()),
                expected: self.diff_id.clone(),
                actual: diff_id.to_owned(),
            });
        }
        Ok(())
    }
}

/// `sha256:<hex>` of `bytes`, as descriptors write digests.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    let mut out = String::from("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Finds the image `selector` asks for in `store` and verifies its manifest and config.
pub fn resolve(
    store: &dyn BlobStore,
    location: &Location,
    selector: &Selector,
) -> Result<Image, SourceError> {
    let prefer_oci = matches!(location, Location::OciArchive(_) | Location::OciLayout(_));
    let has_docker = store.contains("manifest.json");
    let has_oci = store.contains("index.json");
    if has_docker && !(prefer_oci && has_oci) {
        return resolve_docker(store, selector);
    }
    if has_oci {
        return resolve_oci(store, selector);
    }
    Err(SourceError::NotAnImage {
        path: store.origin().to_owned(),
        reason: "it holds neither manifest.json (docker save) nor index.json (OCI layout)".into(),
    })
}

fn read_document(store: &dyn BlobStore, name: &str) -> Result<Vec<u8>, SourceError> {
    store
        .read_small(name, MAX_DOCUMENT)?
        .ok_or_else(|| SourceError::invalid(name, "missing from the image"))
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], name: &str) -> Result<T, SourceError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SourceError::invalid(name, format!("malformed JSON: {e}")))
}

/// The canonical form of a docker reference, so that `alpine`, `alpine:latest` and
/// `docker.io/library/alpine:latest` compare equal.
fn canonical_reference(name: &str) -> String {
    match oci_spec::distribution::Reference::try_from(name) {
        Ok(reference) => reference.whole(),
        Err(_) => name.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn resolve_docker(store: &dyn BlobStore, selector: &Selector) -> Result<Image, SourceError> {
    let entries: Vec<DockerArchiveEntry> =
        parse_json(&read_document(store, "manifest.json")?, "manifest.json")?;
    let tags = |e: &DockerArchiveEntry| e.repo_tags.clone().unwrap_or_default();
    let entry = match &selector.reference {
        Some(wanted) => {
            let wanted_canonical = canonical_reference(wanted);
            entries
                .iter()
                .find(|e| {
                    tags(e)
                        .iter()
                        .any(|t| t == wanted || canonical_reference(t) == wanted_canonical)
                })
                .ok_or_else(|| {
                    SourceError::Selection(format!(
                        "no image `{wanted}` in the archive; it holds: {}",
                        list_docker(&entries)
                    ))
                })?
        }
        None => match entries.as_slice() {
            [only] => only,
            [] => return Err(SourceError::invalid("manifest.json", "lists no image")),
            _ => {
                return Err(SourceError::Selection(format!(
                    "the archive holds {} images; choose one with --image: {}",
                    entries.len(),
                    list_docker(&entries)
                )));
            }
        },
    };
    let config_bytes = read_document(store, &entry.config)?;
    let config_digest = sha256_digest(&config_bytes);
    if let Some(named) = digest_in_name(&entry.config)
        && named != config_digest
    {
        return Err(SourceError::DigestMismatch {
            blob: entry.config.clone(),
            expected: named,
            actual: config_digest,
        });
    }
    let config: ImageConfiguration = parse_json(&config_bytes, &entry.config)?;
    let platform = config_platform(&config);
    check_platform(&platform, selector)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(SourceError::invalid(
            "manifest.json",
            format!(
                "lists {} layers but the config has {} diff_ids",
                entry.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let created_by = layer_history(&config);
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .enumerate()
        .map(|(index, (blob, diff_id))| Layer {
            index,
            blob: Some(blob.clone()),
            digest: digest_in_name(blob),
            diff_id: diff_id.clone(),
            size: None,
            media_type: None,
            created_by: created_by.get(index).cloned().flatten(),
            foreign: false,
        })
        .collect();
    // Docker 25+ archives are OCI layouts too: find the manifest that points at this config.
    let manifest_digest = if store.contains("index.json") {
        manifest_for_config(store, "index.json", &config_digest, 0)
    } else {
        None
    };
    Ok(Image {
        format: ImageFormat::DockerArchive,
        reference: tags(entry)
            .first()
            .cloned()
            .or_else(|| selector.reference.clone()),
        manifest_digest,
        config_digest,
        config,
        platform,
        layers,
        notes: Vec::new(),
    })
}

fn list_docker(entries: &[DockerArchiveEntry]) -> String {
    let names: Vec<String> = entries
        .iter()
        .map(|e| match e.repo_tags.as_deref() {
            Some([first, ..]) => first.clone(),
            _ => format!("(untagged, config {})", e.config),
        })
        .collect();
    names.join(", ")
}

/// `blobs/sha256/<hex>` and legacy `<hex>.json` / `<hex>.tar` names carry their digest.
fn digest_in_name(name: &str) -> Option<String> {
    let hex = if let Some(rest) = name.strip_prefix("blobs/sha256/") {
        rest
    } else {
        let file = name.rsplit('/').next()?;
        file.strip_suffix(".json")
            .or_else(|| file.strip_suffix(".tar"))?
    };
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| format!("sha256:{hex}"))
}

fn manifest_for_config(
    store: &dyn BlobStore,
    name: &str,
    config_digest: &str,
    depth: usize,
) -> Option<String> {
    if depth > MAX_INDEX_DEPTH {
        return None;
    }
    let index: ImageIndex =
        serde_json::from_slice(&store.read_small(name, MAX_DOCUMENT).ok()??).ok()?;
    for descriptor in index.manifests() {
        let blob = blob_name(descriptor).ok()?;
        let bytes = store.read_small(&blob, MAX_DOCUMENT).ok()??;
        if let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&bytes) {
            if manifest.config().digest().to_string() == config_digest
                && sha256_digest(&bytes) == descriptor.digest().to_string()
            {
                return Some(descriptor.digest().to_string());
            }
        } else if let Some(found) = manifest_for_config(store, &blob, config_digest, depth + 1) {
            return Some(found);
        }
    }
    None
}

fn config_platform(config: &ImageConfiguration) -> Platform {
    Platform::new(
        &config.os().to_string(),
        &config.architecture().to_string(),
        config.variant().as_deref(),
    )
}

fn check_platform(platform: &Platform, selector: &Selector) -> Result<(), SourceError> {
    match &selector.platform {
        Some(wanted) if !platform.satisfies(wanted) => Err(SourceError::Selection(format!(
            "the image is for {platform}, not {wanted}"
        ))),
        _ => Ok(()),
    }
}

/// `created_by` for each layer: history entries with `empty_layer` own no layer.
fn layer_history(config: &ImageConfiguration) -> Vec<Option<String>> {
    let Some(history) = config.history() else {
        return Vec::new();
    };
    let owning: Vec<Option<String>> = history
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .map(|h| h.created_by().clone())
        .collect();
    if owning.len() == config.rootfs().diff_ids().len() {
        owning
    } else {
        Vec::new()
    }
}

fn blob_name(descriptor: &Descriptor) -> Result<String, SourceError> {
    let digest = descriptor.digest();
    let algorithm = digest.algorithm().to_string();
    if algorithm != "sha256" {
        return Err(SourceError::Unsupported {
            blob: digest.to_string(),
            reason: format!("digest algorithm {algorithm}; drydock verifies sha256 only"),
        });
    }
    Ok(format!("blobs/sha256/{}", digest.digest()))
}

/// Reads a blob a descriptor points at, checking its size and digest.
fn read_verified(store: &dyn BlobStore, descriptor: &Descriptor) -> Result<Vec<u8>, SourceError> {
    let name = blob_name(descriptor)?;
    let label = descriptor.digest().to_string();
    if descriptor.size() > MAX_DOCUMENT {
        return Err(SourceError::invalid(
            &label,
            format!("a {}-byte document is over the limit", descriptor.size()),
        ));
    }
    let bytes = store
        .read_small(&name, MAX_DOCUMENT)?
        .ok_or_else(|| SourceError::invalid(&label, "missing from the image"))?;
    if bytes.len() as u64 != descriptor.size() {
        return Err(SourceError::SizeMismatch {
            blob: label,
            expected: descriptor.size(),
            actual: bytes.len() as u64,
        });
    }
    let actual = sha256_digest(&bytes);
    if actual != label {
        return Err(SourceError::DigestMismatch {
            blob: name,
            expected: label,
            actual,
        });
    }
    Ok(bytes)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sniff {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    schema_version: Option<u32>,
}

enum Document {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

fn parse_document(bytes: &[u8], label: &str) -> Result<Document, SourceError> {
    let sniff: Sniff = parse_json(bytes, label)?;
    if sniff.schema_version == Some(1) {
        return Err(SourceError::Unsupported {
            blob: label.into(),
            reason: "a Docker schema 1 manifest; re-push the image with a current client".into(),
        });
    }
    let media_type = sniff.media_type.as_deref().unwrap_or("");
    if media_type.contains("index")
        || media_type.contains("manifest.list")
        || sniff.manifests.is_some()
    {
        Ok(Document::Index(Box::new(parse_json(bytes, label)?)))
    } else {
        Ok(Document::Manifest(Box::new(parse_json(bytes, label)?)))
    }
}

fn is_attestation(descriptor: &Descriptor) -> bool {
    let annotated = descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get(DOCKER_REFERENCE_TYPE))
        .is_some_and(|t| t == "attestation-manifest");
    let unknown = descriptor
        .platform()
        .as_ref()
        .is_some_and(|p| p.os().to_string() == "unknown");
    annotated || unknown
}

fn descriptor_platform(descriptor: &Descriptor) -> Option<Platform> {
    descriptor.platform().as_ref().map(|p| {
        Platform::new(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    })
}

fn annotation<'a>(descriptor: &'a Descriptor, key: &str) -> Option<&'a str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn matches_reference(descriptor: &Descriptor, wanted: &str) -> bool {
    let digest = descriptor.digest().to_string();
    if wanted.starts_with("sha256:") && wanted.len() >= 19 && digest.starts_with(wanted) {
        return true;
    }
    let ref_name = annotation(descriptor, REF_NAME);
    let full_name = annotation(descriptor, CONTAINERD_NAME);
    let wanted_canonical = canonical_reference(wanted);
    ref_name == Some(wanted)
        || ref_name.is_some_and(|r| canonical_reference(r) == wanted_canonical && r.contains('/'))
        || full_name.is_some_and(|n| n == wanted || canonical_reference(n) == wanted_canonical)
}

fn describe(descriptor: &Descriptor) -> String {
    let name = annotation(descriptor, REF_NAME).or_else(|| annotation(descriptor, CONTAINERD_NAME));
    match (name, descriptor_platform(descriptor)) {
        (Some(n), Some(p)) => format!("{n} ({p})"),
        (Some(n), None) => n.to_owned(),
        (None, Some(p)) => format!("{p} {}", descriptor.digest()),
        (None, None) => descriptor.digest().to_string(),
    }
}

fn resolve_oci(store: &dyn BlobStore, selector: &Selector) -> Result<Image, SourceError> {
    let index_bytes = read_document(store, "index.json")?;
    let index: ImageIndex = parse_json(&index_bytes, "index.json")?;
    let mut candidates: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| !is_attestation(d))
        .collect();
    let mut reference = None;
    if let Some(wanted) = &selector.reference {
        candidates.retain(|d| matches_reference(d, wanted));
        if candidates.is_empty() {
            let names: Vec<String> = index
                .manifests()
                .iter()
                .filter(|d| !is_attestation(d))
                .map(describe)
                .collect();
            return Err(SourceError::Selection(format!(
                "no image `{wanted}` in {}; it holds: {}",
                store.origin().display(),
                names.join(", ")
            )));
        }
        reference = Some(wanted.clone());
    }
    let chosen = choose(&candidates, selector, "index.json")?;
    if reference.is_none() {
        reference = annotation(chosen, CONTAINERD_NAME)
            .or_else(|| annotation(chosen, REF_NAME))
            .map(str::to_owned);
    }
    let (manifest_digest, manifest) = follow_to_manifest(store, chosen, selector, 0)?;
    let config_descriptor = manifest.config();
    let config_bytes = read_verified(store, config_descriptor)?;
    let config_digest = config_descriptor.digest().to_string();
    let config: ImageConfiguration = parse_json(&config_bytes, &config_digest)?;
    let platform = config_platform(&config);
    check_platform(&platform, selector)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(SourceError::invalid(
            &manifest_digest,
            format!(
                "the manifest lists {} layers but the config has {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let created_by = layer_history(&config);
    let mut notes = Vec::new();
    let mut layers = Vec::new();
    for (index, (descriptor, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
        let media_type = descriptor.media_type().to_string();
        let foreign = classify_layer(&media_type).ok_or_else(|| SourceError::Unsupported {
            blob: descriptor.digest().to_string(),
            reason: format!("unknown layer media type `{media_type}`"),
        })?;
        let name = blob_name(descriptor)?;
        // Only a foreign layer may be absent; a missing ordinary layer fails when it is opened.
        let blob = if !foreign || store.contains(&name) {
            Some(name)
        } else {
            notes.push(format!(
                "layer {index} ({}) is a foreign layer not shipped with the image; its files are not inspected",
                descriptor.digest()
            ));
            None
        };
        layers.push(Layer {
            index,
            blob,
            digest: Some(descriptor.digest().to_string()),
            diff_id: diff_id.clone(),
            size: Some(descriptor.size()),
            media_type: Some(media_type),
            created_by: created_by.get(index).cloned().flatten(),
            foreign,
        });
    }
    Ok(Image {
        format: ImageFormat::Oci,
        reference,
        manifest_digest: Some(manifest_digest),
        config_digest,
        config,
        platform,
        layers,
        notes,
    })
}

/// Picks one descriptor among image candidates: by platform when they carry one, else the
/// only one.
fn choose<'a>(
    candidates: &[&'a Descriptor],
    selector: &Selector,
    origin: &str,
) -> Result<&'a Descriptor, SourceError> {
    match candidates {
        [] => return Err(SourceError::invalid(origin, "lists no image")),
        [only] if descriptor_platform(only).is_none() => return Ok(only),
        _ => {}
    }
    if candidates.iter().all(|d| descriptor_platform(d).is_some()) {
        let wanted = selector.platform.clone().unwrap_or_else(Platform::host);
        return candidates
            .iter()
            .copied()
            .find(|d| descriptor_platform(d).is_some_and(|p| p.satisfies(&wanted)))
            .ok_or_else(|| {
                let available: Vec<String> = candidates
                    .iter()
                    .filter_map(|d| descriptor_platform(d))
                    .map(|p| p.to_string())
                    .collect();
                SourceError::Selection(format!(
                    "no image for platform {wanted}; available: {} (choose with --platform)",
                    available.join(", ")
                ))
            });
    }
    // Several tagged images in one layout, without platforms: one must be named.
    let mut distinct: HashMap<String, &Descriptor> = HashMap::new();
    for descriptor in candidates {
        distinct
            .entry(descriptor.digest().to_string())
            .or_insert(descriptor);
    }
    if distinct.len() == 1 {
        return Ok(candidates[0]);
    }
    let names: Vec<String> = candidates.iter().map(|d| describe(d)).collect();
    Err(SourceError::Selection(format!(
        "{origin} holds {} images; choose one with --image or oci:DIR:TAG: {}",
        candidates.len(),
        names.join(", ")
    )))
}

fn follow_to_manifest(
    store: &dyn BlobStore,
    descriptor: &Descriptor,
    selector: &Selector,
    depth: usize,
) -> Result<(String, ImageManifest), SourceError> {
    let label = descriptor.digest().to_string();
    if depth > MAX_INDEX_DEPTH {
        return Err(SourceError::invalid(&label, "indexes nested too deep"));
    }
    let bytes = read_verified(store, descriptor)?;
    match parse_document(&bytes, &label)? {
        Document::Manifest(manifest) => Ok((label, *manifest)),
        Document::Index(index) => {
            let candidates: Vec<&Descriptor> = index
                .manifests()
                .iter()
                .filter(|d| !is_attestation(d))
                .collect();
            let chosen = choose(&candidates, selector, &label)?;
            follow_to_manifest(store, chosen, selector, depth + 1)
        }
    }
}

/// Whether a layer media type is known, and if so whether it is a foreign
/// (non-distributable) layer. Compression is sniffed from the bytes, not taken from here.
fn classify_layer(media_type: &str) -> Option<bool> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(false),
        "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_read_from_member_names() {
        let hex = "a".repeat(64);
        assert_eq!(
            digest_in_name(&format!("blobs/sha256/{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_in_name(&format!("{hex}.json")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_in_name("abc/layer.tar"), None);
    }

    #[test]
    fn docker_references_compare_canonically() {
        assert_eq!(
            canonical_reference("alpine"),
            canonical_reference("docker.io/library/alpine:latest")
        );
        assert_ne!(
            canonical_reference("alpine:3"),
            canonical_reference("alpine")
        );
    }

    #[test]
    fn schema_1_manifests_are_refused_with_advice() {
        let schema1 =
            br#"{"schemaVersion": 1, "name": "a", "tag": "b", "fsLayers": [], "signatures": []}"#;
        let Err(error) = parse_document(schema1, "sha256:x") else {
            panic!("schema 1 accepted")
        };
        assert!(error.to_string().contains("re-push"), "{error}");
    }

    #[test]
    fn layer_media_types() {
        assert_eq!(
            classify_layer("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(false)
        );
        assert_eq!(
            classify_layer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            Some(true)
        );
        assert_eq!(classify_layer("application/vnd.example.weird"), None);
    }
}
