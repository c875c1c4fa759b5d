//! SARIF 2.1.0, for code-scanning dashboards (GitHub, GitLab, Azure DevOps).
//!
//! Every check is a rule carrying its page as help; every finding is a result located at its
//! path under the `IMAGEROOT` base (the image's filesystem); suppressed findings are results
//! with an external suppression that carries the ignore's reason. Rules and results carry
//! GitHub's `security-severity`, so that its severity levels and thresholds apply.

use std::collections::BTreeMap;

use drydock_checks::Severity;
use serde_json::{Value, json};
use serde_sarif::sarif::{
    ArtifactLocation, Location, LogicalLocation, Message, MultiformatMessageString,
    PhysicalLocation, PropertyBag, ReportingConfiguration, ReportingDescriptor,
    Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool, ToolComponent,
};

use crate::model::{Report, ReportFinding};

/// The schema the output declares; the test suite validates against the OASIS schema.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The base URI id every result's path is relative to.
const IMAGE_ROOT: &str = "IMAGEROOT";

fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Info => ResultLevel::Note,
    }
}

/// GitHub code scanning ranks alerts by `security-severity` (0.0 to 10.0): over 9.0 critical,
/// 7.0 to 8.9 high, 4.0 to 6.9 medium, 0.1 to 3.9 low; each value sits inside its band.
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn text(text: impl Into<String>) -> Message {
    Message {
        text: Some(text.into()),
        ..Message::default()
    }
}

fn properties(values: impl IntoIterator<Item = (&'static str, Value)>) -> PropertyBag {
    PropertyBag {
        additional_properties: values
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        ..PropertyBag::default()
    }
}

/// `elf.library-missing` -> `ElfLibraryMissing`: SARIF wants a name apart from the id.
fn rule_name(id: &str) -> String {
    id.split(['.', '-'])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn rules(report: &Report) -> Vec<ReportingDescriptor> {
    let disabled = report
        .policy
        .as_ref()
        .map(|p| p.disabled.clone())
        .unwrap_or_default();
    drydock_checks::all()
        .iter()
        .map(|check| {
            let id = check.id();
            // The policy's severity is the rule's configuration for this run.
            let severity = report
                .policy
                .as_ref()
                .and_then(|p| p.severity_overrides.get(id).copied())
                .unwrap_or(check.severity());
            let page = drydock_checks::page(id).unwrap_or_default();
            ReportingDescriptor::builder()
                .id(id)
                .name(rule_name(id))
                .short_description(
                    MultiformatMessageString::builder()
                        .text(check.summary())
                        .build(),
                )
                .help(
                    MultiformatMessageString::builder()
                        .text(format!("{} See `drydock explain {id}`.", check.summary()))
                        .markdown(page)
                        .build(),
                )
                .default_configuration(ReportingConfiguration {
                    level: Some(json!(level(severity))),
                    enabled: Some(!disabled.iter().any(|d| d == id)),
                    ..ReportingConfiguration::default()
                })
                .properties(properties([
                    ("severity", json!(severity)),
                    ("security-severity", json!(security_severity(severity))),
                    ("docs", json!(format!("docs/checks/{id}.md"))),
                    (
                        "tags",
                        json!(["container", id.split('.').next().unwrap_or(id)]),
                    ),
                ]))
                .build()
        })
        .collect()
}

fn result(report: &Report, finding: &ReportFinding, rule_index: Option<usize>) -> SarifResult {
    let location = match &finding.path {
        Some(path) => Location {
            physical_location: Some(PhysicalLocation {
                artifact_location: Some(ArtifactLocation {
                    uri: Some(uri_path(path)),
                    uri_base_id: Some(IMAGE_ROOT.to_owned()),
                    ..ArtifactLocation::default()
                }),
                ..PhysicalLocation::default()
            }),
            ..Location::default()
        },
        // Image-wide findings (no CA bundle, shell-form CMD) are about the image itself.
        None => Location {
            logical_locations: Some(vec![LogicalLocation {
                name: Some(image_name(report)),
                kind: Some("module".to_owned()),
                ..LogicalLocation::default()
            }]),
            ..Location::default()
        },
    };
    let mut fingerprints = BTreeMap::new();
    fingerprints.insert(
        "drydock/v1".to_owned(),
        format!("{}:{}", finding.id, finding.path.as_deref().unwrap_or("")),
    );
    let mut result = SarifResult::builder()
        .rule_id(finding.id.clone())
        .level(level(finding.severity))
        .message(text(format!(
            "{} Fix: {}",
            finding.message, finding.remediation
        )))
        .locations(vec![location])
        .partial_fingerprints(fingerprints)
        .properties(properties([
            ("severity", json!(finding.severity)),
            (
                "security-severity",
                json!(security_severity(finding.severity)),
            ),
            ("title", json!(finding.title)),
            ("remediation", json!(finding.remediation)),
            ("layer", json!(finding.layer)),
            ("layerDigest", json!(finding.layer_digest)),
            ("createdBy", json!(finding.created_by)),
            ("program", json!(finding.program)),
            ("cost", json!(finding.cost)),
        ]))
        .build();
    result.rule_index = rule_index.and_then(|i| i64::try_from(i).ok());
    result
}

/// SARIF URIs are percent-encoded; image paths can hold any byte but `/` and NUL.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.trim_start_matches('/').bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn image_name(report: &Report) -> String {
    report.image.name()
}

/// The report as a SARIF 2.1.0 log with one run.
pub fn render_sarif(report: &Report) -> String {
    let rules = rules(report);
    let index_of = |id: &str| rules.iter().position(|r| r.id == id);
    let mut results: Vec<SarifResult> = report
        .findings
        .iter()
        .map(|f| result(report, f, index_of(&f.id)))
        .collect();
    for suppressed in &report.suppressed {
        let mut result = result(
            report,
            &suppressed.finding,
            index_of(&suppressed.finding.id),
        );
        result.suppressions = Some(vec![
            Suppression::builder()
                .kind(json!("external"))
                .status(json!("accepted"))
                .justification(suppressed.ignore.reason.clone())
                .build(),
        ]);
        results.push(result);
    }
    let mut base_ids = BTreeMap::new();
    base_ids.insert(
        IMAGE_ROOT.to_owned(),
        ArtifactLocation {
            uri: Some("file:///".to_owned()),
            description: Some(text(format!(
                "The root of the filesystem of {}",
                image_name(report)
            ))),
            ..ArtifactLocation::default()
        },
    );
    let image = &report.image;
    let driver = ToolComponent::builder()
        .name(report.tool.name.clone())
        .version(report.tool.version.clone())
        .semantic_version(report.tool.version.clone())
        .rules(rules)
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .original_uri_base_ids(base_ids)
        .properties(properties([
            ("image", json!(image.source)),
            ("reference", json!(image.reference)),
            ("manifestDigest", json!(image.manifest_digest)),
            ("configDigest", json!(image.config_digest)),
            ("platform", json!(image.platform)),
            ("score", json!(report.score)),
            ("grade", json!(report.grade)),
            ("passed", json!(report.passed)),
            ("runnable", json!(report.runnable)),
        ]))
        .build();
    let log = Sarif::builder()
        .schema(SCHEMA)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build();
    let mut out =
        serde_json::to_string_pretty(&log).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_camel_case_ids() {
        assert_eq!(rule_name("elf.library-missing"), "ElfLibraryMissing");
        assert_eq!(rule_name("fs.tmp-missing"), "FsTmpMissing");
    }

    #[test]
    fn paths_become_relative_percent_encoded_uris() {
        assert_eq!(uri_path("/usr/lib/libc.so.6"), "usr/lib/libc.so.6");
        assert_eq!(uri_path("/app/my file#1"), "app/my%20file%231");
    }
}
