//! CNCF distribution notifications (`application/vnd.docker.distribution.events.v1+json`, and
//! `v2+json` since distribution v3): which events ask for a scan.
//!
//! Kept: `push` of an image manifest or index. Ignored: blobs, pulls and mounts, tags of the
//! referrers tag schema (`sha256-…`), and manifests whose config (from `target.references`,
//! present with `events.includereferences`) is the OCI empty config or no image config at all:
//! artifacts such as drydock's own referrers, signatures, SBOMs and Helm charts. `delete` ends
//! the verdicts of a digest.

pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
pub const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
pub const IMAGE_CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

/// The envelope a registry posts.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Event {
    pub id: String,
    pub action: String,
    pub target: Target,
    pub request: Request,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Target {
    pub media_type: String,
    pub digest: String,
    pub repository: String,
    pub url: String,
    pub tag: String,
    pub references: Vec<Descriptor>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Request {
    pub host: String,
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAction {
    Scan {
        registry: String,
        repository: String,
        digest: String,
        plain_http: bool,
    },
    Delete {
        digest: String,
    },
    Ignore(&'static str),
}

/// Whether the body is one of the two notification content types (or plain JSON).
pub fn is_events_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/vnd.docker.distribution.events.v1+json"
            | "application/vnd.docker.distribution.events.v2+json"
            | "application/json"
            | ""
    )
}

/// `sha256:` and 64 lower-case hex digits.
pub fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `(host[:port], plain HTTP)` from a URL such as `http://127.0.0.1:5000/v2/…`.
fn url_host(url: &str) -> Option<(String, bool)> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty()).then(|| (host.to_owned(), scheme.eq_ignore_ascii_case("http")))
}

/// A registry name a reference reads as a registry: a bare host such as `harbor-core` would be a
/// Docker Hub repository, so it gets its scheme's default port.
pub fn registry_name(host: &str, plain_http: bool) -> String {
    if host.contains(['.', ':']) || host == "localhost" {
        host.to_owned()
    } else if plain_http {
        format!("{host}:80")
    } else {
        format!("{host}:443")
    }
}

/// Decides what one event asks for. `registry` is the configured registry: used when the
/// event names none, or always when `force` is set.
pub fn classify(event: &Event, registry: Option<&str>, force: bool) -> HookAction {
    let target = &event.target;
    match event.action.as_str() {
        "push" => {}
        "delete" => {
            return if is_digest(&target.digest) {
                HookAction::Delete {
                    digest: target.digest.clone(),
                }
            } else {
                HookAction::Ignore("a delete of a tag")
            };
        }
        _ => return HookAction::Ignore("not a push"),
    }
    if !MANIFEST_TYPES.contains(&target.media_type.as_str()) {
        return HookAction::Ignore("not an image manifest or index");
    }
    if target.tag.starts_with("sha256-") {
        return HookAction::Ignore("a referrers tag");
    }
    if !is_digest(&target.digest) || target.repository.is_empty() {
        return HookAction::Ignore("no digest or repository");
    }
    let is_index = INDEX_TYPES.contains(&target.media_type.as_str());
    if !is_index && !target.references.is_empty() {
        let types: Vec<&str> = target
            .references
            .iter()
            .map(|r| r.media_type.as_str())
            .collect();
        if types.contains(&EMPTY_CONFIG) || !types.iter().any(|t| IMAGE_CONFIG_TYPES.contains(t)) {
            return HookAction::Ignore("an artifact, not an image");
        }
    }
    let from_event = url_host(&target.url)
        .or_else(|| (!event.request.host.is_empty()).then(|| (event.request.host.clone(), false)));
    let (host, plain_http) = match (registry, from_event) {
        (Some(configured), _) if force => (configured.to_owned(), false),
        (_, Some(found)) => found,
        (Some(configured), None) => (configured.to_owned(), false),
        (None, None) => return HookAction::Ignore("no registry host in the event"),
    };
    HookAction::Scan {
        registry: registry_name(&host, plain_http),
        repository: target.repository.clone(),
        digest: target.digest.clone(),
        plain_http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn event(json: serde_json::Value) -> Event {
        serde_json::from_value(json).unwrap()
    }

    fn push(media_type: &str, references: serde_json::Value) -> Event {
        event(serde_json::json!({
            "id": "e1",
            "action": "push",
            "target": {
                "mediaType": media_type,
                "digest": DIGEST,
                "repository": "team/app",
                "url": format!("http://127.0.0.1:5000/v2/team/app/manifests/{DIGEST}"),
                "tag": "1.0",
                "references": references,
            },
            "request": {"host": "127.0.0.1:5000"},
        }))
    }

    #[test]
    fn an_image_push_is_scanned_from_the_registry_that_sent_it() {
        let action = classify(
            &push(
                "application/vnd.oci.image.manifest.v1+json",
                serde_json::json!([
                    {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST},
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST},
                ]),
            ),
            None,
            false,
        );
        assert_eq!(
            action,
            HookAction::Scan {
                registry: "127.0.0.1:5000".into(),
                repository: "team/app".into(),
                digest: DIGEST.into(),
                plain_http: true,
            }
        );
        // Without references (includereferences off), every manifest is a candidate.
        assert!(matches!(
            classify(
                &push(
                    "application/vnd.docker.distribution.manifest.v2+json",
                    serde_json::json!([])
                ),
                None,
                false
            ),
            HookAction::Scan { .. }
        ));
        // An index, whatever its references.
        assert!(matches!(
            classify(
                &push(
                    "application/vnd.oci.image.index.v1+json",
                    serde_json::json!([])
                ),
                None,
                false
            ),
            HookAction::Scan { .. }
        ));
    }

    #[test]
    fn blobs_pulls_referrers_and_artifacts_are_ignored() {
        let blob = push("application/octet-stream", serde_json::json!([]));
        assert!(matches!(
            classify(&blob, None, false),
            HookAction::Ignore(_)
        ));
        let mut pull = push(MANIFEST_TYPES[0], serde_json::json!([]));
        pull.action = "pull".into();
        assert!(matches!(
            classify(&pull, None, false),
            HookAction::Ignore(_)
        ));
        let mut referrers_tag = push(MANIFEST_TYPES[0], serde_json::json!([]));
        referrers_tag.target.tag = format!("sha256-{}", "0".repeat(64));
        assert!(matches!(
            classify(&referrers_tag, None, false),
            HookAction::Ignore(_)
        ));
        for config in [EMPTY_CONFIG, "application/vnd.cncf.helm.config.v1+json"] {
            let artifact = push(
                MANIFEST_TYPES[0],
                serde_json::json!([{"mediaType": config, "digest": DIGEST}]),
            );
            assert_eq!(
                classify(&artifact, None, false),
                HookAction::Ignore("an artifact, not an image"),
                "{config}"
            );
        }
    }

    #[test]
    fn deletes_and_the_configured_registry() {
        let delete = event(serde_json::json!({
            "id": "e2", "action": "delete",
            "target": {"digest": DIGEST, "repository": "team/app"},
        }));
        assert_eq!(
            classify(&delete, None, false),
            HookAction::Delete {
                digest: DIGEST.into()
            }
        );
        let mut bare = push(MANIFEST_TYPES[1], serde_json::json!([]));
        bare.target.url.clear();
        bare.request.host.clear();
        assert!(matches!(
            classify(&bare, None, false),
            HookAction::Ignore(_)
        ));
        assert!(matches!(
            classify(&bare, Some("registry.corp"), false),
            HookAction::Scan { registry, .. } if registry == "registry.corp"
        ));
        let pushed = push(MANIFEST_TYPES[1], serde_json::json!([]));
        assert!(matches!(
            classify(&pushed, Some("registry.corp:5000"), true),
            HookAction::Scan { registry, plain_http: false, .. } if registry == "registry.corp:5000"
        ));
        assert_eq!(registry_name("harbor-core", true), "harbor-core:80");
        assert_eq!(registry_name("localhost", false), "localhost");
        assert!(is_events_type(
            "application/vnd.docker.distribution.events.v2+json"
        ));
        assert!(!is_events_type("text/plain"));
    }
}
