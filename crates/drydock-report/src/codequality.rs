//! GitLab Code Quality (`artifacts: reports: codequality`), for merge-request widgets.
//!
//! One issue per finding that counts (ignored findings are accepted, and Code Quality has no
//! notion of a suppressed issue). Each carries a fingerprint GitLab compares across pipelines to
//! tell new issues from fixed ones, so it is made only of what names the same problem in the
//! next build: the check id, the path in the image, the program and the image's repository
//! name; never the message (which quotes sizes and versions), the layer digest or the tag.

use std::collections::HashMap;

use drydock_checks::Severity;
use serde::Serialize;

use crate::model::{Report, ReportFinding};

#[derive(Serialize)]
struct Issue {
    description: String,
    check_name: String,
    fingerprint: String,
    severity: &'static str,
    location: Location,
}

#[derive(Serialize)]
struct Location {
    path: String,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: u32,
}

/// GitLab's five levels: a finding that stops the container blocks the merge.
fn codequality_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "blocker",
        Severity::High => "critical",
        Severity::Medium => "major",
        Severity::Low => "minor",
        Severity::Info => "info",
    }
}

/// What names one finding across builds: the check id, the path, the program and the image's
/// repository name (empty for an image that records none).
fn identity(report: &Report, finding: &ReportFinding) -> String {
    // NUL-separated: no two different tuples make the same bytes.
    format!(
        "{}\0{}\0{}\0{}",
        finding.id,
        finding.path.as_deref().unwrap_or(""),
        finding.program.as_deref().unwrap_or(""),
        report.image.repository().unwrap_or_default()
    )
}

/// sha256 of the finding's identity; one check can report the same identity more than once
/// (two credentials in the config, which only the message tells apart), so the second and
/// later in report order (most severe first, stable) add their rank, leaving the first's alone.
fn fingerprints(report: &Report) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    report
        .findings
        .iter()
        .map(|finding| {
            let identity = identity(report, finding);
            let rank = seen.entry(identity.clone()).or_default();
            let key = match *rank {
                0 => identity,
                n => format!("{identity}\0{n}"),
            };
            *rank += 1;
            drydock_layers::Sha256Digest::of(key.as_bytes()).hex()
        })
        .collect()
}

fn issue(report: &Report, finding: &ReportFinding, fingerprint: String) -> Issue {
    Issue {
        description: format!("{} Fix: {}", finding.message, finding.remediation),
        check_name: finding.id.clone(),
        fingerprint,
        severity: codequality_severity(finding.severity),
        location: Location {
            // Relative, as GitLab wants; image-wide findings (no CA bundle, root user) are
            // about the image, named as people see it.
            path: match &finding.path {
                Some(path) => path.trim_start_matches('/').to_owned(),
                None => report.image.name(),
            },
            // An image path has no lines; GitLab requires one.
            lines: Lines { begin: 1 },
        },
    }
}

/// The report as a GitLab Code Quality report: a JSON array of issues.
pub fn render_codequality(report: &Report) -> String {
    let issues: Vec<Issue> = report
        .findings
        .iter()
        .zip(fingerprints(report))
        .map(|(finding, fingerprint)| issue(report, finding, fingerprint))
        .collect();
    let mut json =
        serde_json::to_string_pretty(&issues).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
