//! Kubernetes AdmissionReview v1: the images a request runs, and the answer.
//!
//! Pure: the server resolves each image to its verdicts (or a miss) within its budget and
//! hands the outcomes to [`decide`]; nothing here does I/O.

use crate::config::OnMiss;
use crate::store::Verdict;

/// The review as the API server posts it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AdmissionReview {
    pub api_version: String,
    pub kind: String,
    pub request: Option<AdmissionRequest>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub operation: String,
    pub object: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// One container's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// `containers[app]`, `initContainers[setup]`.
    pub container: String,
    pub image: String,
}

/// The pod spec inside an object of `kind`.
fn pod_spec<'a>(kind: &str, object: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
    match kind {
        "Pod" => object.get("spec"),
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController"
        | "PodTemplate" => {
            object.pointer("/spec/template/spec").or_else(|| {
                // A PodTemplate holds its template at the top.
                object.pointer("/template/spec")
            })
        }
        "CronJob" => object.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// Every container, init container and ephemeral container image of the request's object,
/// in order, each once per container. Kinds that run no pods give none.
pub fn images(request: &AdmissionRequest) -> Vec<ImageUse> {
    let Some(object) = &request.object else {
        return Vec::new();
    };
    let Some(spec) = pod_spec(&request.kind.kind, object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(field).and_then(|c| c.as_array()) else {
            continue;
        };
        for container in containers {
            let Some(image) = container.get("image").and_then(|i| i.as_str()) else {
                continue;
            };
            let name = container
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("?");
            out.push(ImageUse {
                container: format!("{field}[{name}]"),
                image: image.to_owned(),
            });
        }
    }
    out
}

/// What the server found for one image.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Verdicts of the image (every platform of an index that has one); `missing` lists the
    /// platforms with none yet.
    Verdicts {
        digest: String,
        verdicts: Vec<Verdict>,
        missing: Vec<String>,
    },
    /// No verdict at all (with why: not scanned yet, or the registry could not be asked).
    Miss { reason: String },
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why it was denied (for `status.message`), one reason per image.
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
}

/// Warnings longer than this are cut (Kubernetes advises 120 characters).
const WARNING_MAX: usize = 120;

fn short(text: String) -> String {
    if text.chars().count() <= WARNING_MAX {
        return text;
    }
    let mut cut: String = text.chars().take(WARNING_MAX - 1).collect();
    cut.push('…');
    cut
}

fn describe(verdict: &Verdict) -> String {
    let mut text = format!(
        "{} score {}/100 {}",
        if verdict.platform.is_empty() {
            "image"
        } else {
            &verdict.platform
        },
        verdict.score,
        verdict.grade
    );
    if let Some(counts) = verdict.counts.as_object() {
        let found: Vec<String> = counts
            .iter()
            .filter(|(_, n)| n.as_u64().is_some_and(|n| n > 0))
            .map(|(severity, n)| format!("{n} {severity}"))
            .collect();
        if !found.is_empty() {
            text.push_str(&format!(" ({})", found.join(", ")));
        }
    }
    text
}

/// Decides: an image whose verdict (the worst platform's) failed its gate denies; an image
/// with no verdict follows `on_miss`.
pub fn decide(outcomes: &[(ImageUse, Outcome)], on_miss: OnMiss) -> Decision {
    let mut reasons = Vec::new();
    let mut warnings = Vec::new();
    let miss = |text: String, reasons: &mut Vec<String>, warnings: &mut Vec<String>| match on_miss {
        OnMiss::Deny => reasons.push(text),
        OnMiss::Warn => warnings.push(short(text)),
        OnMiss::Allow => {}
    };
    for (image, outcome) in outcomes {
        match outcome {
            Outcome::Verdicts {
                digest,
                verdicts,
                missing,
            } => {
                let failed: Vec<String> = verdicts
                    .iter()
                    .filter(|v| !v.passed)
                    .map(describe)
                    .collect();
                if !failed.is_empty() {
                    reasons.push(format!(
                        "{} {} ({digest}): the drydock gate failed: {}",
                        image.container,
                        image.image,
                        failed.join("; ")
                    ));
                } else if !missing.is_empty() {
                    miss(
                        format!(
                            "{} {}: no drydock verdict yet for {}",
                            image.container,
                            image.image,
                            missing.join(", ")
                        ),
                        &mut reasons,
                        &mut warnings,
                    );
                }
            }
            Outcome::Miss { reason } => miss(
                format!("{} {}: {reason}", image.container, image.image),
                &mut reasons,
                &mut warnings,
            ),
        }
    }
    Decision {
        allowed: reasons.is_empty(),
        reasons,
        warnings,
    }
}

/// The AdmissionReview answer for `uid`.
pub fn response(uid: &str, decision: &Decision) -> serde_json::Value {
    let mut response = serde_json::json!({
        "uid": uid,
        "allowed": decision.allowed,
    });
    if !decision.allowed {
        response["status"] = serde_json::json!({
            "code": 403,
            "message": format!("drydock: {}", decision.reasons.join("; ")),
        });
    }
    if !decision.warnings.is_empty() {
        response["warnings"] = serde_json::json!(decision.warnings);
    }
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, object: serde_json::Value) -> AdmissionRequest {
        serde_json::from_value(serde_json::json!({
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": "CREATE",
            "object": object,
        }))
        .unwrap()
    }

    fn pod_spec() -> serde_json::Value {
        serde_json::json!({
            "initContainers": [{"name": "init", "image": "registry.example/init:1"}],
            "containers": [
                {"name": "app", "image": "registry.example/app:2"},
                {"name": "side", "image": "registry.example/side@sha256:00"},
            ],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        })
    }

    #[test]
    fn every_workload_kind_gives_its_pod_images() {
        let spec = pod_spec();
        let template = serde_json::json!({"spec": {"template": {"spec": spec}}});
        for (kind, object) in [
            ("Pod", serde_json::json!({"spec": spec})),
            ("Deployment", template.clone()),
            ("ReplicaSet", template.clone()),
            ("StatefulSet", template.clone()),
            ("DaemonSet", template.clone()),
            ("Job", template.clone()),
            ("ReplicationController", template.clone()),
            (
                "CronJob",
                serde_json::json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
            ),
        ] {
            let found = images(&request(kind, object));
            let names: Vec<&str> = found.iter().map(|i| i.image.as_str()).collect();
            assert_eq!(
                names,
                [
                    "registry.example/init:1",
                    "registry.example/app:2",
                    "registry.example/side@sha256:00",
                    "busybox"
                ],
                "{kind}"
            );
            assert_eq!(found[0].container, "initContainers[init]");
        }
        assert!(images(&request("ConfigMap", serde_json::json!({"data": {}}))).is_empty());
    }

    fn verdict(platform: &str, passed: bool) -> Verdict {
        Verdict {
            digest: "sha256:x".into(),
            platform: platform.into(),
            engine_version: "0".into(),
            policy_digest: "none".into(),
            job_id: 1,
            repository: "r".into(),
            score: if passed { 96 } else { 40 },
            grade: if passed { "A" } else { "F" }.into(),
            passed,
            runnable: passed,
            worst: None,
            counts: serde_json::json!({"critical": if passed { 0 } else { 1 }}),
            scanned_at: String::new(),
            report: String::new(),
            harbor: String::new(),
        }
    }

    fn app() -> ImageUse {
        ImageUse {
            container: "containers[app]".into(),
            image: "registry.example/app:2".into(),
        }
    }

    #[test]
    fn the_worst_platform_wins_and_misses_follow_the_setting() {
        let good = Outcome::Verdicts {
            digest: "sha256:i".into(),
            verdicts: vec![verdict("linux/amd64", true)],
            missing: Vec::new(),
        };
        let mixed = Outcome::Verdicts {
            digest: "sha256:i".into(),
            verdicts: vec![verdict("linux/amd64", true), verdict("linux/arm64", false)],
            missing: Vec::new(),
        };
        let miss = Outcome::Miss {
            reason: "no drydock verdict yet; a scan is queued".into(),
        };
        let allowed = decide(&[(app(), good.clone())], OnMiss::Deny);
        assert!(allowed.allowed);
        let denied = decide(&[(app(), mixed)], OnMiss::Allow);
        assert!(!denied.allowed);
        assert!(denied.reasons[0].contains("linux/arm64 score 40/100 F (1 critical)"));
        assert!(!denied.reasons[0].contains("amd64"));
        assert!(!decide(&[(app(), miss.clone())], OnMiss::Deny).allowed);
        let warned = decide(&[(app(), miss.clone())], OnMiss::Warn);
        assert!(warned.allowed);
        assert_eq!(warned.warnings.len(), 1);
        assert!(warned.warnings[0].chars().count() <= WARNING_MAX);
        let silent = decide(&[(app(), miss)], OnMiss::Allow);
        assert!(silent.allowed && silent.warnings.is_empty());

        let answer = response("u-1", &denied);
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], "u-1");
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["status"]["code"], 403);
        let answer = response("u-2", &warned);
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("status").is_none());
        assert_eq!(answer["response"]["warnings"].as_array().unwrap().len(), 1);
    }
}
