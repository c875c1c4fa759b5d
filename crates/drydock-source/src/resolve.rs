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
    /// skopeo's `dir:` layout.
    SkopeoDir,
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
struct RawDockerEntry {
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Option<Vec<String>>,
}

/// One image of `manifest.json`, with every name checked to be there.
struct DockerArchiveEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

const DOCKER_MANIFEST: &str = "manifest.json";

/// Reads `manifest.json` as `docker load` does, naming the entry and the field of every
/// problem.
fn docker_entries(bytes: &[u8]) -> Result<Vec<DockerArchiveEntry>, SourceError> {
    let bad = |reason: String| SourceError::invalid(DOCKER_MANIFEST, reason);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the file is empty".into()));
    }
    let value: serde_json::Value = parse_json(bytes, DOCKER_MANIFEST)?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => {
            return Err(bad(format!(
                "holds {}, not a list of images",
                json_kind(&other)
            )));
        }
    };
    if items.is_empty() {
        return Err(bad("lists no image (`[]`)".into()));
    }
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let raw: RawDockerEntry =
            serde_json::from_value(item).map_err(|e| bad(format!("entry {i}: malformed: {e}")))?;
        let config = match raw.config {
            Some(c) if !c.trim().is_empty() => c,
            Some(_) => return Err(bad(format!("entry {i}: `Config` is empty"))),
            None => return Err(bad(format!("entry {i}: `Config` is missing"))),
        };
        let Some(layers) = raw.layers else {
            return Err(bad(format!("entry {i}: `Layers` is missing")));
        };
        if let Some(j) = layers.iter().position(|l| l.trim().is_empty()) {
            return Err(bad(format!("entry {i}: `Layers[{j}]` is empty")));
        }
        let repo_tags = raw
            .repo_tags
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .collect();
        entries.push(DockerArchiveEntry {
            config,
            repo_tags,
            layers,
        });
    }
    Ok(entries)
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "`null`",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn resolve_docker(store: &dyn BlobStore, selector: &Selector) -> Result<Image, SourceError> {
    let entries = docker_entries(&read_document(store, DOCKER_MANIFEST)?)?;
    let entry = match &selector.reference {
        Some(wanted) => {
            let wanted_canonical = canonical_reference(wanted);
            let by_digest = |e: &DockerArchiveEntry| {
                wanted.starts_with("sha256:")
                    && wanted.len() >= 19
                    && digest_in_name(&e.config).is_some_and(|d| d.starts_with(wanted.as_str()))
            };
            entries
                .iter()
                .find(|e| {
                    e.repo_tags
                        .iter()
                        .any(|t| t == wanted || canonical_reference(t) == wanted_canonical)
                        || by_digest(e)
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
    let mut notes = Vec::new();
    if let Some(named) = config_digest_in_name(&entry.config)
        && named != config_digest
    {
        // `docker load` reads the config by its path and takes the image id from its bytes.
        notes.push(format!(
            "the config `{}` is named after {named}, but its content's digest is \
             {config_digest}; the image id is taken from the content, as `docker load` does",
            entry.config
        ));
    }
    let config: ImageConfiguration = parse_config(&config_bytes, &entry.config)?;
    let platform = config_platform(&config);
    check_platform(&platform, selector)?;
    notes.extend(platform_note(&platform, selector));
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(SourceError::invalid(
            DOCKER_MANIFEST,
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
        reference: entry
            .repo_tags
            .first()
            .cloned()
            .or_else(|| selector.reference.clone()),
        manifest_digest,
        config_digest,
        config,
        platform,
        layers,
        notes,
    })
}

/// Each image of an archive as the user can choose it: its tags, else its config.
fn list_docker(entries: &[DockerArchiveEntry]) -> String {
    let names: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let id = config_digest_in_name(&e.config).unwrap_or_else(|| e.config.clone());
            match e.repo_tags.as_slice() {
                [] => format!("entry {i}: untagged, config {id}"),
                tags => format!("entry {i}: {} (config {id})", tags.join(", ")),
            }
        })
        .collect();
    names.join("; ")
}

/// A config member's name as a digest: `<hex>.json` (docker save), `blobs/sha256/<hex>`
/// (Docker 25+) or `sha256:<hex>` (kaniko, go-containerregistry).
fn config_digest_in_name(name: &str) -> Option<String> {
    digest_in_name(name).or_else(|| {
        let hex = name.rsplit('/').next()?.strip_prefix("sha256:")?;
        is_sha256_hex(hex).then(|| format!("sha256:{hex}"))
    })
}

fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
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
    is_sha256_hex(hex).then(|| format!("sha256:{hex}"))
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

/// A source with one image is scanned whatever its platform; the report says so when it is
/// not this machine's, since `docker run` here would need emulation.
fn platform_note(platform: &Platform, selector: &Selector) -> Option<String> {
    let host = Platform::host();
    (selector.platform.is_none() && !platform.satisfies(&host)).then(|| {
        format!(
            "the image is for {platform}, not this machine's platform ({host}); it was scanned \
             as it is (choose another entry of a multi-platform image with --platform)"
        )
    })
}

/// Parses an image config, saying what the document is when it is not one.
fn parse_config(bytes: &[u8], label: &str) -> Result<ImageConfiguration, SourceError> {
    parse_json(bytes, label).map_err(|e| {
        let looks_like_config = serde_json::from_slice::<serde_json::Value>(bytes)
            .is_ok_and(|v| v.get("rootfs").is_some());
        if looks_like_config {
            e
        } else {
            SourceError::invalid(label, "not an image config (it has no `rootfs`)")
        }
    })
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

const IMAGE_MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    // Schema 1: chosen like any image, then refused with the reason.
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const IMAGE_CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// An index entry that may be an image: a manifest or index media type and no `artifactType`.
/// Entries for anything else (signatures, SBOMs, Helm charts, attestations) are passed over,
/// as `docker pull` and containerd pass over them when they pick an image.
fn may_be_image(descriptor: &Descriptor) -> bool {
    let media_type = descriptor.media_type().to_string();
    !is_attestation(descriptor)
        && descriptor.artifact_type().is_none()
        && (IMAGE_MANIFEST_TYPES.contains(&media_type.as_str())
            || INDEX_TYPES.contains(&media_type.as_str()))
}

/// What a non-image config or artifact type is, for the message that refuses it.
fn artifact_kind(media_type: &str) -> &'static str {
    match media_type {
        t if t.starts_with("application/vnd.cncf.helm.") => "a Helm chart",
        "application/vnd.oci.empty.v1+json" => "an OCI artifact with an empty config",
        t if t.starts_with("application/vnd.dev.cosign.") => "a cosign signature or attestation",
        t if t.starts_with("application/vnd.in-toto") => "an in-toto attestation",
        t if t.contains("spdx") || t.contains("cyclonedx") || t.contains("syft") => "an SBOM",
        t if t.starts_with("application/vnd.wasm.") => "a WebAssembly module",
        t if t.starts_with("application/vnd.sylabs.sif.") => "a Singularity (SIF) image",
        t if t.starts_with("application/vnd.drydock.") => "a drydock report",
        t if t.starts_with("application/sarif") => "a SARIF report",
        t if t.starts_with("application/vnd.unknown.") => "an artifact of unknown type",
        _ => "not an image config",
    }
}

fn not_an_image(blob: &str, what: &str, media_type: &str) -> SourceError {
    SourceError::NotAContainerImage {
        blob: blob.to_owned(),
        reason: format!("{what} is {media_type} ({})", artifact_kind(media_type)),
    }
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

fn wants_digest(wanted: &str) -> bool {
    wanted.starts_with("sha256:") && wanted.len() >= 19
}

fn matches_reference(descriptor: &Descriptor, wanted: &str) -> bool {
    let digest = descriptor.digest().to_string();
    if wants_digest(wanted) && digest.starts_with(wanted) {
        return true;
    }
    let ref_name = annotation(descriptor, REF_NAME);
    let full_name = annotation(descriptor, CONTAINERD_NAME);
    let wanted_canonical = canonical_reference(wanted);
    ref_name == Some(wanted)
        || ref_name.is_some_and(|r| canonical_reference(r) == wanted_canonical && r.contains('/'))
        || full_name.is_some_and(|n| n == wanted || canonical_reference(n) == wanted_canonical)
}

/// What tells one index entry from the others: its digest, platform and names; `also` are the
/// other entries for the same digest, whose names are listed with it.
fn describe_all(descriptor: &Descriptor, also: &[&Descriptor]) -> String {
    let mut facts = Vec::new();
    if let Some(platform) = descriptor_platform(descriptor) {
        facts.push(platform.to_string());
    }
    let mut names: Vec<&str> = Vec::new();
    for d in std::iter::once(descriptor).chain(also.iter().copied()) {
        for name in [REF_NAME, CONTAINERD_NAME]
            .iter()
            .filter_map(|k| annotation(d, k))
        {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    match names.as_slice() {
        [] => {}
        [one] => facts.push(format!("tag {one}")),
        many => facts.push(format!("tags {}", many.join(", "))),
    }
    if let Some(artifact_type) = descriptor.artifact_type() {
        facts.push(format!("artifact {artifact_type}"));
    }
    if facts.is_empty() {
        descriptor.digest().to_string()
    } else {
        format!("{} ({})", descriptor.digest(), facts.join(", "))
    }
}

/// Every distinct digest among `descriptors`, once, with all its names, in order of first
/// appearance (grouped by a map: an index may list a hundred thousand entries).
fn describe_distinct(descriptors: &[&Descriptor]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<&Descriptor>> = HashMap::new();
    for d in descriptors {
        let digest = d.digest().to_string();
        let group = groups.entry(digest.clone()).or_default();
        if group.is_empty() {
            order.push(digest);
        }
        group.push(d);
    }
    order
        .iter()
        .filter_map(|digest| {
            let group = groups.get(digest)?;
            Some(describe_all(group[0], &group[1..]))
        })
        .collect()
}

/// The first descriptor of each digest, in order.
fn distinct_digests<'a>(candidates: &[&'a Descriptor]) -> Vec<&'a Descriptor> {
    let mut seen = std::collections::HashSet::new();
    candidates
        .iter()
        .copied()
        .filter(|d| seen.insert(d.digest().to_string()))
        .collect()
}

/// `index.json` read leniently: `manifests` may be missing or `null` (Docker 25 writes that),
/// which means no image, said in words.
#[derive(Deserialize)]
struct LenientIndex {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

fn read_index(store: &dyn BlobStore, name: &str) -> Result<Vec<Descriptor>, SourceError> {
    let bytes = read_document(store, name)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SourceError::invalid(name, "the file is empty"));
    }
    let value: serde_json::Value = parse_json(&bytes, name)?;
    if !value.is_object() {
        return Err(SourceError::invalid(
            name,
            format!("holds {}, not an image index", json_kind(&value)),
        ));
    }
    let index: LenientIndex = parse_json(&bytes, name)?;
    match index.manifests {
        Some(manifests) if !manifests.is_empty() => Ok(manifests),
        Some(_) => Err(SourceError::invalid(
            name,
            "lists no image (`manifests` is empty)",
        )),
        None => Err(SourceError::invalid(
            name,
            "lists no image (no `manifests`)",
        )),
    }
}

fn resolve_oci(store: &dyn BlobStore, selector: &Selector) -> Result<Image, SourceError> {
    let manifests = read_index(store, "index.json")?;
    let mut candidates: Vec<&Descriptor> = manifests.iter().filter(|d| may_be_image(d)).collect();
    let mut reference = None;
    let nested;
    if let Some(wanted) = &selector.reference {
        let named: Vec<&Descriptor> = manifests
            .iter()
            .filter(|d| !is_attestation(d) && matches_reference(d, wanted))
            .collect();
        if named.is_empty() {
            nested = if wants_digest(wanted) {
                find_nested(store, &manifests, wanted, 0)
            } else {
                None
            };
            match &nested {
                Some(found) => candidates = vec![found],
                None => {
                    let listed: Vec<&Descriptor> =
                        manifests.iter().filter(|d| !is_attestation(d)).collect();
                    let names = describe_distinct(&listed);
                    return Err(SourceError::Selection(format!(
                        "no image `{wanted}` in {}; it holds: {}",
                        store.origin().display(),
                        names.join("; ")
                    )));
                }
            }
        } else {
            candidates = named;
        }
        reference = Some(wanted.clone());
    }
    if candidates.iter().all(|d| !may_be_image(d)) {
        let first = candidates
            .first()
            .copied()
            .or_else(|| manifests.iter().find(|d| !is_attestation(d)));
        return Err(match first {
            Some(d) => {
                let what = d
                    .artifact_type()
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| d.media_type().to_string());
                not_an_image(d.digest().as_ref(), "the entry's type", &what)
            }
            None => SourceError::invalid("index.json", "lists no image"),
        });
    }
    candidates.retain(|d| may_be_image(d));
    let candidates = drop_artifacts(store, candidates);
    let chosen = choose(&candidates, selector, "index.json")?;
    if reference.is_none() {
        reference = annotation(chosen, CONTAINERD_NAME)
            .or_else(|| annotation(chosen, REF_NAME))
            .map(str::to_owned);
    }
    let (manifest_digest, manifest) = follow_to_manifest(store, chosen, selector, 0)?;
    let config_descriptor = manifest.config();
    let config_type = config_descriptor.media_type().to_string();
    if !IMAGE_CONFIG_TYPES.contains(&config_type.as_str()) {
        return Err(not_an_image(&manifest_digest, "its config", &config_type));
    }
    let config_bytes = read_verified(store, config_descriptor)?;
    let config_digest = config_descriptor.digest().to_string();
    let config: ImageConfiguration = parse_config(&config_bytes, &config_digest)?;
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
    let mut notes: Vec<String> = platform_note(&platform, selector).into_iter().collect();
    let mut layers = Vec::new();
    for (index, (descriptor, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
        let media_type = descriptor.media_type().to_string();
        let foreign = classify_layer(&media_type).ok_or_else(|| SourceError::Unsupported {
            blob: descriptor.digest().to_string(),
            reason: format!("unknown layer media type `{media_type}` (layer {index})"),
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
        format: if store.is_skopeo_dir() {
            ImageFormat::SkopeoDir
        } else {
            ImageFormat::Oci
        },
        reference,
        manifest_digest: Some(manifest_digest),
        config_digest,
        config,
        platform,
        layers,
        notes,
    })
}

/// A descriptor anywhere below the top-level index whose digest starts with `wanted`: docker
/// and containerd run an image by the digest of a platform's manifest as well as the index's.
fn find_nested(
    store: &dyn BlobStore,
    manifests: &[Descriptor],
    wanted: &str,
    depth: usize,
) -> Option<Descriptor> {
    if depth > MAX_INDEX_DEPTH {
        return None;
    }
    for descriptor in manifests {
        if !INDEX_TYPES.contains(&descriptor.media_type().to_string().as_str()) {
            continue;
        }
        let Ok(bytes) = read_verified(store, descriptor) else {
            continue;
        };
        let Ok(index) = serde_json::from_slice::<LenientIndex>(&bytes) else {
            continue;
        };
        let children = index.manifests.unwrap_or_default();
        if let Some(found) = children
            .iter()
            .find(|d| d.digest().to_string().starts_with(wanted))
        {
            return Some(found.clone());
        }
        if let Some(found) = find_nested(store, &children, wanted, depth + 1) {
            return Some(found);
        }
    }
    None
}

/// Among several candidates, drops image manifests whose config is not an image config (an
/// artifact with an OCI manifest media type and no `artifactType`). Blobs that cannot be read
/// stay: choosing one of them fails with its own error.
fn drop_artifacts<'a>(
    store: &dyn BlobStore,
    candidates: Vec<&'a Descriptor>,
) -> Vec<&'a Descriptor> {
    // Entries that all carry a platform are chosen by it, and reading every platform's
    // manifest (a request each, from a registry) would be work for nothing.
    if candidates.iter().all(|d| descriptor_platform(d).is_some()) {
        return candidates;
    }
    if distinct_digests(&candidates).len() < 2 {
        return candidates;
    }
    // Each manifest is read once, however many entries name it.
    let mut known: HashMap<String, bool> = HashMap::new();
    let mut is_artifact = |d: &Descriptor| -> bool {
        *known
            .entry(d.digest().to_string())
            .or_insert_with(|| manifest_is_artifact(store, d))
    };
    let kept: Vec<&Descriptor> = candidates
        .iter()
        .copied()
        .filter(|d| !is_artifact(d))
        .collect();
    if kept.is_empty() { candidates } else { kept }
}

/// Whether an image-manifest entry's config is not an image config.
fn manifest_is_artifact(store: &dyn BlobStore, d: &Descriptor) -> bool {
    if !IMAGE_MANIFEST_TYPES.contains(&d.media_type().to_string().as_str()) {
        return false;
    }
    let Ok(bytes) = read_verified(store, d) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/config/mediaType")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .is_some_and(|t| !IMAGE_CONFIG_TYPES.contains(&t.as_str()))
}

/// Picks one descriptor among image candidates: the only one whatever its platform (a
/// `--platform` given must match it), else by platform when they carry one (the host's by
/// default, as `docker pull` does), else the user must name one.
fn choose<'a>(
    candidates: &[&'a Descriptor],
    selector: &Selector,
    origin: &str,
) -> Result<&'a Descriptor, SourceError> {
    match candidates {
        [] => return Err(SourceError::invalid(origin, "lists no image")),
        [only] => {
            if let (Some(wanted), Some(platform)) = (&selector.platform, descriptor_platform(only))
                && !platform.satisfies(wanted)
            {
                return Err(SourceError::Selection(format!(
                    "{origin} holds one image, for {platform}, not {wanted}"
                )));
            }
            return Ok(only);
        }
        _ => {}
    }
    // The same manifest listed twice (two tags) is one image.
    let distinct = distinct_digests(candidates);
    if let [only] = distinct.as_slice() {
        return choose(&[*only], selector, origin);
    }
    if distinct.iter().all(|d| descriptor_platform(d).is_some()) {
        let wanted = selector.platform.clone().unwrap_or_else(Platform::host);
        return distinct
            .iter()
            .copied()
            .find(|d| descriptor_platform(d).is_some_and(|p| p.satisfies(&wanted)))
            .ok_or_else(|| {
                let available: Vec<String> = distinct
                    .iter()
                    .filter_map(|d| descriptor_platform(d))
                    .map(|p| p.to_string())
                    .collect();
                SourceError::Selection(format!(
                    "{origin} has no image for platform {wanted}; available: {} (choose with --platform)",
                    available.join(", ")
                ))
            });
    }
    let names = describe_distinct(candidates);
    Err(SourceError::Selection(format!(
        "{origin} holds {} images; choose one with --image (a tag or a digest) or oci:DIR:TAG: {}",
        distinct.len(),
        names.join("; ")
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
        return Err(SourceError::invalid(
            &label,
            format!("indexes nested more than {MAX_INDEX_DEPTH} deep (or in a loop)"),
        ));
    }
    let bytes = read_verified(store, descriptor)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SourceError::invalid(&label, "the manifest is empty"));
    }
    match parse_document(&bytes, &label)? {
        Document::Manifest(manifest) => Ok((label, *manifest)),
        Document::Index(index) => {
            let all = index.manifests();
            let candidates: Vec<&Descriptor> = all.iter().filter(|d| may_be_image(d)).collect();
            if candidates.is_empty()
                && let Some(first) = all.iter().find(|d| !is_attestation(d))
            {
                let what = first
                    .artifact_type()
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| first.media_type().to_string());
                return Err(not_an_image(&label, "every entry's type", &what));
            }
            let candidates = drop_artifacts(store, candidates);
            let chosen = choose(&candidates, selector, &label)?;
            follow_to_manifest(store, chosen, selector, depth + 1)
        }
    }
}

/// Whether a layer media type is known, and if so whether it is a foreign
/// (non-distributable) layer. Compression is sniffed from the bytes, not taken from here.
fn classify_layer(media_type: &str) -> Option<bool> {
    let known = match media_type {
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
    };
    // Other tar types (`application/tar+gzip`, `application/x-tar`) are read as layers, as
    // go-containerregistry and containerd's differ read them: the bytes decide.
    known.or_else(|| {
        let subtype = media_type.split_once('/')?.1;
        let is_tar = subtype.starts_with("tar") || subtype.starts_with("x-tar");
        is_tar.then_some(false)
    })
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

    fn entries_error(json: &str) -> String {
        match docker_entries(json.as_bytes()) {
            Ok(_) => panic!("{json} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn docker_manifests_name_the_entry_and_field_of_every_problem() {
        assert_eq!(entries_error(""), "manifest.json: the file is empty");
        assert_eq!(
            entries_error("null"),
            "manifest.json: holds `null`, not a list of images"
        );
        assert_eq!(entries_error("[]"), "manifest.json: lists no image (`[]`)");
        assert_eq!(
            entries_error(r#"[{"Config": "", "RepoTags": [""], "Layers": []}]"#),
            "manifest.json: entry 0: `Config` is empty"
        );
        assert_eq!(
            entries_error(
                r#"[{"Config": "a.json", "Layers": ["x/layer.tar"]}, {"Config": "b.json"}]"#
            ),
            "manifest.json: entry 1: `Layers` is missing"
        );
        assert_eq!(
            entries_error(r#"[{"Config": "a.json", "Layers": ["x/layer.tar", " "]}]"#),
            "manifest.json: entry 0: `Layers[1]` is empty"
        );
        let entries =
            docker_entries(br#"[{"Config": "c.json", "RepoTags": null, "Layers": []}]"#).unwrap();
        assert!(entries[0].repo_tags.is_empty());
    }

    #[test]
    fn config_names_carry_digests_in_every_writer_s_form() {
        let hex = "b".repeat(64);
        for name in [
            format!("{hex}.json"),
            format!("blobs/sha256/{hex}"),
            format!("sha256:{hex}"),
        ] {
            assert_eq!(
                config_digest_in_name(&name),
                Some(format!("sha256:{hex}")),
                "{name}"
            );
        }
        assert_eq!(config_digest_in_name("config.json"), None);
    }

    #[test]
    fn artifacts_are_named_by_what_they_are() {
        assert_eq!(
            artifact_kind("application/vnd.cncf.helm.config.v1+json"),
            "a Helm chart"
        );
        assert_eq!(
            artifact_kind("application/vnd.oci.empty.v1+json"),
            "an OCI artifact with an empty config"
        );
        let error = not_an_image(
            "sha256:x",
            "its config",
            "application/vnd.cncf.helm.config.v1+json",
        );
        assert_eq!(
            error.to_string(),
            "sha256:x: not a container image: its config is application/vnd.cncf.helm.config.v1+json (a Helm chart)"
        );
        assert_eq!(error.class(), crate::ErrorClass::Usage);
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
        assert_eq!(classify_layer("application/tar+gzip"), Some(false));
        assert_eq!(classify_layer("application/json"), None);
    }
}
