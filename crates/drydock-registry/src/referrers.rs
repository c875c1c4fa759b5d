//! OCI 1.1 referrers: artifacts that point at an image manifest through their `subject`, pushed
//! and listed through the referrers API when the registry serves it, else through the referrers
//! tag schema (an index under the tag `sha256-<hex>` that clients keep themselves).
//!
//! The tag schema has no locking and distribution 2.8 has no conditional PUT, so writers follow
//! rules that converge whatever the interleaving: an artifact occupies a *slot* (the value of an
//! annotation, e.g. one per drydock report kind) that holds one referrer, the newest by
//! `org.opencontainers.image.created` (then by digest); every index written keeps at most one
//! descriptor per slot, never drops a newer one, drops descriptors whose manifest is gone (the
//! registry rejects an index with a missing child), and leaves every other descriptor as it was,
//! annotations and unknown fields included. After the PUT the writer reads the index back and
//! tries again while its artifact is missing and nothing newer holds the slot.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::RegistryClient;
use crate::error::RegistryError;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty config of an artifact: the two bytes `{}`.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The annotation the referrers of one subject are ordered by (Ratify needs it too).
pub const CREATED: &str = "org.opencontainers.image.created";

/// How many times a writer reads, merges and writes the tag index before giving up.
const MAX_ROUNDS: u32 = 12;

/// The manifest artifacts are attached to.
#[derive(Debug, Clone)]
pub struct Subject {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// One file to attach as a referrer: an OCI image manifest with `artifactType`, the empty
/// config, and the file as its one layer.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub artifact_type: String,
    pub layer_media_type: String,
    pub content: Vec<u8>,
    /// Copied onto the manifest and onto its descriptor in the tag index. Should hold
    /// [`CREATED`].
    pub annotations: BTreeMap<String, String>,
    /// The annotation whose value names the slot this artifact holds: an existing referrer of
    /// the same slot is replaced when older, and wins when newer.
    pub slot_key: String,
}

impl Artifact {
    fn slot(&self) -> Option<&str> {
        self.annotations.get(&self.slot_key).map(String::as_str)
    }

    /// The artifact's manifest, canonical JSON.
    pub fn manifest(&self, subject: &Subject, layer_digest: &str) -> Vec<u8> {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": self.artifact_type,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [{
                "mediaType": self.layer_media_type,
                "digest": layer_digest,
                "size": self.content.len(),
            }],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
            "annotations": self.annotations,
        });
        serde_json::to_vec(&manifest).unwrap_or_default()
    }
}

/// How the registry keeps referrers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersMethod {
    /// `GET /v2/<name>/referrers/<digest>` (OCI distribution 1.1).
    Api,
    /// The `sha256-<hex>` tag index (the spec's fallback).
    TagSchema,
}

/// What an attach did.
#[derive(Debug, Clone)]
pub struct Attached {
    pub method: ReferrersMethod,
    /// (artifact type, manifest digest) of each artifact now current.
    pub current: Vec<(String, String)>,
    /// Manifests of older referrers in the same slots, deleted.
    pub replaced: Vec<String>,
    /// Descriptors of the tag index whose manifest was gone, dropped.
    pub pruned: Vec<String>,
    /// Artifacts of this attach that a newer referrer of the same slot had already replaced.
    pub superseded: Vec<String>,
    /// Read-merge-write rounds the tag index took (0 with the API).
    pub rounds: u32,
}

/// The referrers tag of a digest: `sha256:<hex>` -> `sha256-<hex>`, other characters that a tag
/// cannot hold replaced with `-`.
pub fn referrers_tag(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .take(max)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("{}-{}", clean(algorithm, 32), clean(hex, 64))
}

fn annotation<'a>(descriptor: &'a Value, key: &str) -> Option<&'a str> {
    descriptor.get("annotations")?.get(key)?.as_str()
}

fn digest_of(descriptor: &Value) -> Option<&str> {
    descriptor.get("digest")?.as_str()
}

/// Ordering key of a referrer within its slot: newer sorts greater.
fn age_key(descriptor: &Value) -> (String, String) {
    (
        annotation(descriptor, CREATED)
            .map(normalise_time)
            .unwrap_or_default(),
        digest_of(descriptor).unwrap_or_default().to_owned(),
    )
}

/// RFC 3339 times compared as instants when they parse, as text otherwise.
fn normalise_time(text: &str) -> String {
    match text.parse::<jiff::Timestamp>() {
        Ok(time) => format!("{:040}", time.as_nanosecond() + (1i128 << 100)),
        Err(_) => text.to_owned(),
    }
}

/// Lists the referrers of `subject` (descriptors with `artifactType` and annotations), by the
/// API when the registry has it, else from the tag index; none when neither exists.
pub fn list(
    client: &RegistryClient,
    subject: &str,
) -> Result<(ReferrersMethod, Vec<Value>), RegistryError> {
    if let Some(descriptors) = client.referrers(subject)? {
        return Ok((ReferrersMethod::Api, descriptors));
    }
    Ok((ReferrersMethod::TagSchema, read_tag_index(client, subject)?))
}

fn read_tag_index(client: &RegistryClient, subject: &str) -> Result<Vec<Value>, RegistryError> {
    let tag = referrers_tag(subject);
    let (bytes, media_type, _digest) = match client.manifest(&tag) {
        Ok(found) => found,
        Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let what = format!(
        "{}/{}:{tag}",
        client.reference().registry,
        client.reference().repository
    );
    let index: Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
        what: what.clone(),
        reason: format!("the referrers tag is not JSON: {e}"),
    })?;
    let declared = index
        .get("mediaType")
        .and_then(Value::as_str)
        .or(media_type.as_deref());
    if declared != Some(OCI_INDEX) {
        return Err(RegistryError::Invalid {
            what,
            reason: format!(
                "the referrers tag holds a {}, not an OCI image index; it is not drydock's to overwrite",
                declared.unwrap_or("document without a media type")
            ),
        });
    }
    Ok(match index.get("manifests") {
        Some(Value::Array(descriptors)) => descriptors.clone(),
        _ => Vec::new(),
    })
}

/// Pushes `artifacts` as referrers of `subject`: blobs, then each manifest by digest, then
/// (without the API) the tag index; older referrers of the same slots are deleted.
pub fn attach(
    client: &RegistryClient,
    subject: &Subject,
    artifacts: &[Artifact],
) -> Result<Attached, RegistryError> {
    let mut ours = Vec::new();
    let mut api = false;
    for artifact in artifacts {
        let (manifest, stored, oci_subject) = push_artifact(client, subject, artifact)?;
        api |= oci_subject.as_deref() == Some(subject.digest.as_str());
        let mut descriptor = json!({
            "mediaType": OCI_MANIFEST,
            "digest": stored,
            "size": manifest.len(),
            "artifactType": artifact.artifact_type,
        });
        if !artifact.annotations.is_empty() {
            descriptor["annotations"] = json!(artifact.annotations);
        }
        ours.push((artifact, descriptor));
    }
    if !api && let Some(existing) = client.referrers(&subject.digest)? {
        log::debug!(
            "{}: the registry serves the referrers API ({} referrers)",
            subject.digest,
            existing.len()
        );
        api = true;
    }
    if api {
        attach_with_api(client, subject, &ours)
    } else {
        attach_with_tag(client, subject, &ours)
    }
}

/// Uploads an artifact's blobs and manifest: (manifest bytes, digest, `OCI-Subject`). Writers
/// pushing the same blob at once can make distribution refuse the manifest for a moment
/// (`MANIFEST_BLOB_UNKNOWN` while a concurrent upload of that blob commits): push again.
fn push_artifact(
    client: &RegistryClient,
    subject: &Subject,
    artifact: &Artifact,
) -> Result<(Vec<u8>, String, Option<String>), RegistryError> {
    let mut round = 0;
    loop {
        round += 1;
        let pushed = client.put_blob(b"{}").and_then(|_| {
            let layer = client.put_blob(&artifact.content)?;
            let manifest = artifact.manifest(subject, &layer);
            let digest = crate::client::sha256_digest(&manifest);
            let (stored, oci_subject) = client.put_manifest(&digest, OCI_MANIFEST, &manifest)?;
            Ok((manifest, stored, oci_subject))
        });
        match pushed {
            Err(RegistryError::Rejected { reason, .. }) if round < 5 => {
                log::debug!(
                    "pushing the {} artifact: {reason}; again",
                    artifact.artifact_type
                );
                pause(round);
            }
            other => return other,
        }
    }
}

/// For each slot of ours, the newest descriptor among `existing` and ours: (keep, drop).
fn settle_slots<'a>(
    existing: &[Value],
    ours: &'a [(&Artifact, Value)],
) -> (Vec<Value>, BTreeSet<String>, Vec<&'a Value>) {
    let mut newest: HashMap<(String, String), Value> = HashMap::new();
    let slot_of = |descriptor: &Value, key: &str| annotation(descriptor, key).map(str::to_owned);
    let keys: BTreeSet<&str> = ours.iter().map(|(a, _)| a.slot_key.as_str()).collect();
    let mut others = Vec::new();
    let mut dropped = BTreeSet::new();
    let candidates = existing.iter().chain(ours.iter().map(|(_, d)| d));
    for descriptor in candidates {
        let slot = keys.iter().find_map(|key| {
            let value = slot_of(descriptor, key)?;
            ours.iter()
                .any(|(a, _)| a.slot_key == *key && a.slot() == Some(value.as_str()))
                .then(|| ((*key).to_owned(), value))
        });
        let Some(slot) = slot else {
            others.push(descriptor.clone());
            continue;
        };
        match newest.get(&slot) {
            Some(held) if digest_of(held) == digest_of(descriptor) => {}
            Some(held) if age_key(held) >= age_key(descriptor) => {
                dropped.insert(digest_of(descriptor).unwrap_or_default().to_owned());
            }
            previous => {
                if let Some(previous) = previous {
                    dropped.insert(digest_of(previous).unwrap_or_default().to_owned());
                }
                newest.insert(slot, descriptor.clone());
            }
        }
    }
    let kept: BTreeSet<String> = newest
        .values()
        .filter_map(digest_of)
        .map(str::to_owned)
        .collect();
    let superseded = ours
        .iter()
        .map(|(_, d)| d)
        .filter(|d| !kept.contains(digest_of(d).unwrap_or_default()))
        .collect();
    // Ours go last, in the order given; others keep their order.
    let mut index = others;
    for (_, descriptor) in ours {
        if kept.contains(digest_of(descriptor).unwrap_or_default()) {
            index.push(descriptor.clone());
        }
    }
    for descriptor in newest.into_values() {
        let digest = digest_of(&descriptor).unwrap_or_default();
        if !ours.iter().any(|(_, d)| digest_of(d) == Some(digest)) {
            index.push(descriptor);
        }
    }
    dropped.retain(|d| !kept.contains(d.as_str()));
    (index, dropped, superseded)
}

fn attach_with_api(
    client: &RegistryClient,
    subject: &Subject,
    ours: &[(&Artifact, Value)],
) -> Result<Attached, RegistryError> {
    let existing = client.referrers(&subject.digest)?.unwrap_or_default();
    let (_index, dropped, superseded) = settle_slots(&existing, ours);
    let mut replaced = Vec::new();
    let ours_superseded = superseded.iter().filter_map(|d| digest_of(d));
    for digest in dropped.iter().map(String::as_str).chain(ours_superseded) {
        if delete_quietly(client, digest) {
            replaced.push(digest.to_owned());
        }
    }
    Ok(Attached {
        method: ReferrersMethod::Api,
        current: current_of(ours, &superseded),
        replaced,
        pruned: Vec::new(),
        superseded: superseded
            .iter()
            .filter_map(|d| digest_of(d))
            .map(str::to_owned)
            .collect(),
        rounds: 0,
    })
}

fn current_of(ours: &[(&Artifact, Value)], superseded: &[&Value]) -> Vec<(String, String)> {
    ours.iter()
        .filter(|(_, d)| !superseded.iter().any(|s| digest_of(s) == digest_of(d)))
        .map(|(a, d)| {
            (
                a.artifact_type.clone(),
                digest_of(d).unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Deletes a manifest, logging rather than failing: a registry without `delete.enabled`
/// leaves an old referrer stored but unlisted, which costs space, not correctness.
fn delete_quietly(client: &RegistryClient, digest: &str) -> bool {
    match client.delete_manifest(digest) {
        Ok(deleted) => deleted,
        Err(e) => {
            log::warn!("could not delete the replaced referrer {digest}: {e}");
            false
        }
    }
}

fn attach_with_tag(
    client: &RegistryClient,
    subject: &Subject,
    ours: &[(&Artifact, Value)],
) -> Result<Attached, RegistryError> {
    let tag = referrers_tag(&subject.digest);
    let mut pruned = BTreeSet::new();
    let mut dropped_all = BTreeSet::new();
    for round in 1..=MAX_ROUNDS {
        let existing = read_tag_index(client, &subject.digest)?;
        // Prune children that are gone: the registry would refuse the whole index.
        let mut live = Vec::with_capacity(existing.len());
        for descriptor in existing {
            let Some(digest) = digest_of(&descriptor) else {
                continue;
            };
            if ours.iter().any(|(_, d)| digest_of(d) == Some(digest))
                || client.exists("manifests", digest)?
            {
                live.push(descriptor);
            } else {
                pruned.insert(digest.to_owned());
            }
        }
        let (index, dropped, superseded) = settle_slots(&live, ours);
        dropped_all.extend(dropped);
        let unchanged = index == live;
        if !unchanged {
            let document = json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": index,
            });
            let bytes = serde_json::to_vec(&document).unwrap_or_default();
            match client.put_manifest(&tag, OCI_INDEX, &bytes) {
                Ok(_) => {}
                // A child deleted between our check and the PUT (a concurrent writer): again.
                Err(RegistryError::Rejected { reason, .. }) if round < MAX_ROUNDS => {
                    log::debug!("{tag}: the index was refused ({reason}); merging again");
                    pause(round);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        // No conditional PUT: read back, and go again if a concurrent writer's PUT won.
        let now = read_tag_index(client, &subject.digest)?;
        let (_, _, superseded_now) = settle_slots(&now, ours);
        let wanted: Vec<&str> = ours
            .iter()
            .map(|(_, d)| d)
            .filter(|d| !superseded_now.iter().any(|s| digest_of(s) == digest_of(d)))
            .filter_map(digest_of)
            .collect();
        let missing = wanted
            .iter()
            .any(|w| !now.iter().any(|d| digest_of(d) == Some(*w)));
        if missing && round < MAX_ROUNDS {
            log::debug!("{tag}: a concurrent writer replaced the index; merging again");
            pause(round);
            continue;
        }
        if missing {
            return Err(RegistryError::Invalid {
                what: format!(
                    "{}/{}:{tag}",
                    client.reference().registry,
                    client.reference().repository
                ),
                reason: format!(
                    "other writers kept replacing the referrers index; gave up after {MAX_ROUNDS} rounds"
                ),
            });
        }
        let superseded_digests: Vec<String> = superseded
            .iter()
            .chain(superseded_now.iter())
            .filter_map(|d| digest_of(d))
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut replaced = Vec::new();
        let listed: BTreeSet<&str> = now.iter().filter_map(digest_of).collect();
        for digest in dropped_all.iter().chain(superseded_digests.iter()) {
            if !listed.contains(digest.as_str()) && delete_quietly(client, digest) {
                replaced.push(digest.clone());
            }
        }
        let superseded_refs: Vec<&Value> = superseded
            .iter()
            .chain(superseded_now.iter())
            .copied()
            .collect();
        return Ok(Attached {
            method: ReferrersMethod::TagSchema,
            current: current_of(ours, &superseded_refs),
            replaced,
            pruned: pruned.into_iter().collect(),
            superseded: superseded_digests,
            rounds: round,
        });
    }
    unreachable!("the last round returns")
}

/// A short random pause before merging again, so that racing writers spread out.
fn pause(round: u32) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 50)
        .unwrap_or(0);
    std::thread::sleep(Duration::from_millis(
        u64::from(round.min(6)) * 40 + u64::from(jitter) * 4,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(kind: &str, created: &str) -> Artifact {
        Artifact {
            artifact_type: format!("application/{kind}"),
            layer_media_type: "application/json".into(),
            content: kind.as_bytes().to_vec(),
            annotations: BTreeMap::from([
                ("dev.drydock.kind".to_owned(), kind.to_owned()),
                (CREATED.to_owned(), created.to_owned()),
            ]),
            slot_key: "dev.drydock.kind".into(),
        }
    }

    fn descriptor(digest: &str, kind: Option<&str>, created: &str) -> Value {
        let mut d = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": 1,
            "artifactType": "x", "annotations": {CREATED: created}});
        if let Some(kind) = kind {
            d["annotations"]["dev.drydock.kind"] = json!(kind);
        }
        d
    }

    #[test]
    fn tags_follow_the_schema() {
        assert_eq!(referrers_tag("sha256:abc"), "sha256-abc");
        assert_eq!(referrers_tag("sha512+b64:a/b"), "sha512-b64-a-b");
    }

    #[test]
    fn a_newer_report_replaces_an_older_one_and_foreign_ones_stay() {
        let report = artifact("report", "2026-11-30T10:00:00Z");
        let ours = vec![(
            &report,
            descriptor("sha256:new", Some("report"), "2026-11-30T10:00:00Z"),
        )];
        let foreign = json!({"mediaType": OCI_MANIFEST, "digest": "sha256:sig", "size": 9,
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "annotations": {"dev.sigstore.bundle.content": "message-signature"}, "extra": 1});
        let existing = vec![
            descriptor("sha256:old", Some("report"), "2026-11-29T10:00:00Z"),
            foreign.clone(),
            descriptor("sha256:sarif", Some("sarif"), "2026-11-29T10:00:00Z"),
        ];
        let (index, dropped, superseded) = settle_slots(&existing, &ours);
        assert_eq!(index.len(), 3);
        assert!(index.contains(&foreign));
        assert!(index.iter().any(|d| digest_of(d) == Some("sha256:new")));
        assert!(index.iter().any(|d| digest_of(d) == Some("sha256:sarif")));
        assert_eq!(dropped, BTreeSet::from(["sha256:old".to_owned()]));
        assert!(superseded.is_empty());
    }

    #[test]
    fn a_newer_report_already_there_wins() {
        let report = artifact("report", "2026-11-30T10:00:00Z");
        let ours = vec![(
            &report,
            descriptor("sha256:mine", Some("report"), "2026-11-30T10:00:00Z"),
        )];
        let existing = vec![descriptor(
            "sha256:later",
            Some("report"),
            "2026-11-30T10:00:00.5Z",
        )];
        let (index, dropped, superseded) = settle_slots(&existing, &ours);
        assert_eq!(index, existing);
        assert_eq!(dropped, BTreeSet::from(["sha256:mine".to_owned()]));
        assert_eq!(superseded.len(), 1);
    }

    #[test]
    fn duplicates_of_one_slot_collapse_to_the_newest() {
        let report = artifact("report", "2026-11-30T10:00:00Z");
        let ours = vec![(
            &report,
            descriptor("sha256:b", Some("report"), "2026-11-30T10:00:00Z"),
        )];
        let existing = vec![
            descriptor("sha256:a", Some("report"), "2026-11-30T10:00:00Z"),
            descriptor("sha256:c", Some("report"), "2026-11-30T10:00:00Z"),
        ];
        let (index, _dropped, _) = settle_slots(&existing, &ours);
        let digests: Vec<_> = index.iter().filter_map(digest_of).collect();
        assert_eq!(digests, ["sha256:c"], "ties go to the greater digest");
    }
}
