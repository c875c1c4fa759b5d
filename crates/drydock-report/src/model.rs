use std::ops::Deref;

use drydock_checks::{Finding, Severity};
use jiff::Timestamp;

use crate::policy::Policy;
use crate::score::{Gate, Grade};

/// The version of the JSON contract. Bumped only when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// One scan's result.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// The version of this contract; see `docs/report.md`.
    pub schema_version: u32,
    /// The drydock that wrote the report.
    pub tool: ToolInfo,
    /// When the scan ran: RFC 3339, UTC, whole seconds (`2026-05-01T12:00:00Z`).
    #[schemars(extend("format" = "date-time"))]
    pub scanned_at: String,
    pub image: ImageInfo,
    /// 0 to 100; see `docs/scoring.md`.
    pub score: u32,
    pub grade: Grade,
    /// The thresholds the verdict was computed with.
    pub gate: GateReport,
    /// Whether the gate passed (the process exit code says the same).
    pub passed: bool,
    /// False when a critical finding says the container will not start or its program fails.
    pub runnable: bool,
    /// The findings that count, most severe first.
    pub findings: Vec<ReportFinding>,
    /// Findings a policy ignore accepted: they cost nothing and do not gate.
    pub suppressed: Vec<SuppressedFinding>,
    /// The policy file applied, if any.
    pub policy: Option<PolicyReport>,
    /// Things that limited the scan without stopping it (a foreign layer not shipped, an
    /// expired ignore).
    pub notes: Vec<String>,
}

/// The program that wrote a report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl Default for ToolInfo {
    fn default() -> Self {
        Self {
            name: "drydock".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The gate's thresholds, after the command line and the policy file.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct GateReport {
    /// Findings at or above this fail the gate; null never fails on findings.
    pub fail_on: Option<Severity>,
    pub min_score: Option<u32>,
}

/// A finding a policy ignore accepted, with the ignore.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SuppressedFinding {
    #[serde(flatten)]
    pub finding: ReportFinding,
    pub ignore: IgnoreReport,
}

/// An ignore rule of the policy file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct IgnoreReport {
    pub id: String,
    /// The path glob, when the ignore has one.
    pub path: Option<String>,
    pub reason: String,
    /// The last day it applies (YYYY-MM-DD, UTC).
    pub expires: Option<String>,
}

/// What the policy file changed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PolicyReport {
    pub file: String,
    /// `sha256:<hex>` of the file's bytes.
    pub digest: String,
    /// Checks whose severity the policy sets.
    pub severity_overrides: std::collections::BTreeMap<String, Severity>,
    /// Checks the policy turns off.
    pub disabled: Vec<String>,
    /// Ignores past their `expires` date: their findings count again.
    pub expired_ignores: Vec<IgnoreReport>,
    /// Ignores that matched no finding: candidates for removal.
    pub unused_ignores: Vec<IgnoreReport>,
}

/// What a report is built from, besides the image.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    pub gate: Gate,
    pub policy: Option<&'a Policy>,
    /// The catalogue: each check's id and default severity.
    pub checks: &'a [(&'a str, Severity)],
    /// When the scan ran; ignores expire against its day in UTC.
    pub scanned_at: Timestamp,
}

impl Report {
    /// The findings counted by severity, most severe first: `1 critical, 2 medium`, or
    /// `no findings`.
    pub fn severity_counts(&self) -> String {
        let counts: Vec<String> = Severity::ALL
            .into_iter()
            .filter_map(|s| {
                let n = self.findings.iter().filter(|f| f.severity == s).count();
                (n > 0).then(|| format!("{n} {s}"))
            })
            .collect();
        if counts.is_empty() {
            "no findings".to_owned()
        } else {
            counts.join(", ")
        }
    }

    /// Applies the policy to the findings, scores them and decides the gate.
    pub fn build(
        image: ImageInfo,
        findings: Vec<Finding>,
        mut notes: Vec<String>,
        input: ReportInput<'_>,
    ) -> Self {
        let (findings, suppressed, policy) = match input.policy {
            None => (findings, Vec::new(), None),
            Some(policy) => {
                let today = input
                    .scanned_at
                    .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                    .date();
                let applied = policy.apply(findings, input.checks, today);
                for ignore in &applied.expired {
                    notes.push(format!(
                        "{}: the ignore of {}{} expired on {}; its findings count again (reason given: {})",
                        policy.file,
                        ignore.id,
                        ignore.path.as_deref().map(|p| format!(" at {p}")).unwrap_or_default(),
                        ignore.expires.map(|d| d.to_string()).unwrap_or_default(),
                        ignore.reason
                    ));
                }
                let report = PolicyReport {
                    file: policy.file.clone(),
                    digest: policy.digest.clone(),
                    severity_overrides: policy.severity_overrides.clone(),
                    disabled: policy.disabled.iter().cloned().collect(),
                    expired_ignores: applied.expired.iter().map(|i| i.to_report()).collect(),
                    unused_ignores: applied.unused.iter().map(|i| i.to_report()).collect(),
                };
                (applied.findings, applied.suppressed, Some(report))
            }
        };
        let (score, grade) = crate::score::score(&findings);
        let passed = input.gate.passes(&findings, score);
        let runnable = findings.iter().all(|f| f.severity != Severity::Critical);
        let suppressed = suppressed
            .into_iter()
            .map(|(finding, ignore)| SuppressedFinding {
                finding: ReportFinding::new(finding, 0, &image.layers),
                ignore: ignore.to_report(),
            })
            .collect();
        Report {
            schema_version: SCHEMA_VERSION,
            tool: ToolInfo::default(),
            scanned_at: rfc3339_seconds(input.scanned_at),
            findings: ReportFinding::from_findings(findings, &image.layers),
            image,
            score,
            grade,
            gate: GateReport {
                fail_on: input.gate.fail_on,
                min_score: input.gate.min_score,
            },
            passed,
            runnable,
            suppressed,
            policy,
            notes,
        }
    }
}

/// `2026-05-01T12:00:00Z`: sub-second digits say nothing about a scan and vary the output.
fn rfc3339_seconds(time: Timestamp) -> String {
    Timestamp::from_second(time.as_second())
        .unwrap_or(time)
        .to_string()
}

/// A finding as the report shows it: what the check found, the layer that made it, what it
/// cost, where it is explained.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ReportFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// The digest of the layer that wrote `path`: its diff id (the sha256 of the uncompressed
    /// tar, what `docker inspect` lists under `RootFS.Layers`), the same whether the image
    /// comes from a registry, an OCI archive or `docker save`.
    pub layer_digest: Option<String>,
    /// The history entry (Dockerfile instruction) that made that layer.
    pub created_by: Option<String>,
    /// Points this finding took from the score (see `docs/scoring.md`).
    pub cost: u32,
    /// The check's page.
    pub docs: String,
}

impl ReportFinding {
    fn new(finding: Finding, cost: u32, layers: &[LayerReport]) -> Self {
        let layer = finding
            .layer
            .and_then(|i| layers.iter().find(|l| l.index == i));
        Self {
            docs: format!("docs/checks/{}.md", finding.id),
            layer_digest: layer.map(|l| l.diff_id.clone()),
            created_by: layer.and_then(|l| l.created_by.clone()),
            finding,
            cost,
        }
    }

    /// Wraps findings with their costs, layers and documentation links.
    pub fn from_findings(findings: Vec<Finding>, layers: &[LayerReport]) -> Vec<Self> {
        let costs = crate::score::costs(&findings);
        findings
            .into_iter()
            .zip(costs)
            .map(|(finding, cost)| Self::new(finding, cost, layers))
            .collect()
    }
}

impl Deref for ReportFinding {
    type Target = Finding;
    fn deref(&self) -> &Finding {
        &self.finding
    }
}

/// Which image was scanned.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ImageInfo {
    /// What the user named, with its transport: `docker-archive:app.tar`.
    pub source: String,
    /// The image's name or tag, when the source records one.
    pub reference: Option<String>,
    /// The manifest digest, when the format has a manifest (OCI, Docker 25+ archives).
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    pub platform: String,
    pub layers: Vec<LayerReport>,
    /// dive's image efficiency, 0 to 1.
    pub efficiency: f64,
    /// dive's wasted bytes: every size of every path more than one layer touches.
    pub wasted_bytes: u64,
    /// Wasted bytes over the bytes of the layers above the base, in percent.
    pub user_wasted_percent: f64,
}

impl ImageInfo {
    /// The digest to show a person: the manifest's when the format has one, else the config's.
    pub fn shown_digest(&self) -> &str {
        self.manifest_digest
            .as_deref()
            .unwrap_or(&self.config_digest)
    }

    /// The image's name without tag or digest, as cosign names an attestation's subject
    /// (go-containerregistry's repository name: `index.docker.io/library/alpine`,
    /// `registry.example/team/app`); none when the format records only a tag (OCI layouts).
    pub fn repository(&self) -> Option<String> {
        self.reference
            .as_deref()
            .filter(|r| r.contains([':', '/', '@']))
            .map(repository_name)
    }

    /// How to name the image to a person: its reference when it is a full name, the source
    /// with the tag when the format records only a tag (OCI layouts).
    pub fn name(&self) -> String {
        match &self.reference {
            Some(r) if r.contains([':', '/', '@']) => r.clone(),
            Some(tag) => format!("{}:{tag}", self.source),
            None => self.source.clone(),
        }
    }
}

/// `docker.io/team/app:1.2@sha256:…` -> `index.docker.io/team/app`, by docker's grammar: the
/// first component names a registry only when it has a `.` or `:` or is `localhost`.
fn repository_name(reference: &str) -> String {
    let name = reference
        .split_once('@')
        .map_or(reference, |(name, _digest)| name);
    let last_component = name.rfind('/').map_or(0, |slash| slash + 1);
    let name = match name[last_component..].find(':') {
        Some(colon) => &name[..last_component + colon],
        None => name,
    };
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", name),
    };
    // go-containerregistry (and so cosign) spells Docker Hub `index.docker.io`.
    if registry == "docker.io" || registry == "index.docker.io" {
        if path.contains('/') {
            format!("index.docker.io/{path}")
        } else {
            format!("index.docker.io/library/{path}")
        }
    } else {
        format!("{registry}/{path}")
    }
}

/// One layer of the scanned image.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct LayerReport {
    pub index: usize,
    /// The blob digest, when the format records it.
    pub digest: Option<String>,
    pub diff_id: String,
    /// Bytes of the blob as stored.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Bytes of regular files the layer adds, and how many of them later layers overwrite or
    /// delete (dive's "wasted" bytes).
    pub added_bytes: u64,
    pub wasted_bytes: u64,
    /// The Dockerfile instruction that made the layer, from the config history.
    pub created_by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::repository_name;

    #[test]
    fn repository_names_are_cosigns() {
        for (reference, repository) in [
            ("alpine", "index.docker.io/library/alpine"),
            ("alpine:3.20", "index.docker.io/library/alpine"),
            (
                "docker.io/drydock-fixtures/static-go:latest",
                "index.docker.io/drydock-fixtures/static-go",
            ),
            (
                "drydock-fixtures/static-go:latest",
                "index.docker.io/drydock-fixtures/static-go",
            ),
            ("registry.example/team/app:1.4", "registry.example/team/app"),
            (
                "registry.example:5000/team/app@sha256:0123",
                "registry.example:5000/team/app",
            ),
            ("localhost/app:dev", "localhost/app"),
        ] {
            assert_eq!(repository_name(reference), repository, "{reference}");
        }
    }
}
