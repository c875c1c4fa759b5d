//! The Harbor pluggable scanner API's vulnerability report (spec v1.2), for `drydock serve`.
//!
//! Harbor shows and gates only on vulnerability reports, so each finding becomes one
//! "vulnerability" item, chosen to survive Harbor's storage, which deduplicates items per
//! scanner by `(id, package, version)` and keeps the first description, links and vendor
//! attributes for every later artifact: `id` is the check id (a project's CVE allowlist then
//! accepts a check by id), `package` the path in the image (or `image-config`), `version` the
//! diff id of the layer that wrote it (so records of different images stay apart and say
//! where), `description` the check's one-line title (the same for every image), `links` the
//! check's page, `fix_version` empty (Harbor would count the item "fixable"), and
//! `vendor_attributes.drydock` the path, layer and remediation. One synthetic item,
//! `drydock.score`, carries the score and grade, which the report schema has no slot for.

use drydock_checks::Severity;
use serde::Serialize;

use crate::model::Report;
use crate::score::Grade;

/// Harbor's native report MIME type (the default when Harbor sends no `Accept`).
pub const HARBOR_REPORT_MIME: &str =
    "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
/// The generic vulnerability report MIME type (adds `vendor_attributes`, `cwe_ids`).
pub const GENERIC_REPORT_MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";
/// Where a check's page is published; the item's link is this followed by `<id>.md`.
pub const CHECK_PAGE_BASE: &str = "https://drydock.dev/docs/checks/";
/// The id of the synthetic item that carries the score and grade.
pub const SCORE_ITEM_ID: &str = "drydock.score";

/// Which of the two vulnerability report MIME types to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HarborFlavour {
    /// `application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0`.
    Harbor,
    /// `application/vnd.security.vulnerability.report; version=1.1`.
    Generic,
}

impl HarborFlavour {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Harbor => HARBOR_REPORT_MIME,
            Self::Generic => GENERIC_REPORT_MIME,
        }
    }
}

/// The artifact Harbor asked about, as it named it in the scan request.
#[derive(Debug, Clone, Serialize)]
pub struct HarborArtifact {
    /// The repository without the registry (`library/mongo`).
    pub repository: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// The findings as Harbor items, without the artifact: what a server stores per verdict (the
/// report itself is not read back), to answer any later request about any artifact name.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HarborFindings {
    pub generated_at: String,
    pub scanner_name: String,
    pub scanner_version: String,
    /// The most severe item's severity.
    pub severity: String,
    pub vulnerabilities: Vec<HarborItem>,
}

/// One vulnerability item.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HarborItem {
    pub id: String,
    pub package: String,
    pub version: String,
    pub fix_version: String,
    pub severity: String,
    pub description: String,
    pub links: Vec<String>,
    pub vendor_attributes: serde_json::Value,
}

#[derive(Serialize)]
struct HarborReport<'a> {
    generated_at: &'a str,
    artifact: &'a HarborArtifact,
    scanner: Scanner<'a>,
    severity: &'a str,
    vulnerabilities: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Scanner<'a> {
    name: &'a str,
    vendor: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct Item<'a> {
    #[serde(flatten)]
    item: &'a HarborItem,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwe_ids: Option<[&'a str; 0]>,
}

/// Harbor's severity names; `info` has no peer and is `Negligible` (shown as "None").
pub fn harbor_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Info => "Negligible",
    }
}

/// The severity the score item carries: the grade as Harbor would gate on it.
fn grade_severity(grade: Grade) -> &'static str {
    match grade {
        Grade::A => "Negligible",
        Grade::B => "Low",
        Grade::C => "Medium",
        Grade::D => "High",
        Grade::F => "Critical",
    }
}

/// Harbor's severities from least to most severe, to take a maximum.
fn rank(severity: &str) -> u8 {
    match severity {
        "Negligible" => 1,
        "Low" => 2,
        "Medium" => 3,
        "High" => 4,
        "Critical" => 5,
        _ => 0,
    }
}

/// The report as a Harbor vulnerability report of `flavour`, about `artifact`.
pub fn render_harbor(report: &Report, artifact: &HarborArtifact, flavour: HarborFlavour) -> String {
    HarborFindings::from_report(report).render(artifact, flavour)
}

impl HarborFindings {
    /// Maps every finding that counts to an item, and adds the score item.
    pub fn from_report(report: &Report) -> Self {
        let mut items: Vec<HarborItem> = report
            .findings
            .iter()
            .map(|finding| HarborItem {
                id: finding.id.clone(),
                package: finding
                    .path
                    .clone()
                    .unwrap_or_else(|| "image-config".to_owned()),
                version: finding.layer_digest.clone().unwrap_or_default(),
                fix_version: String::new(),
                severity: harbor_severity(finding.severity).to_owned(),
                description: finding.title.clone(),
                links: vec![format!("{CHECK_PAGE_BASE}{}.md", finding.id)],
                vendor_attributes: serde_json::json!({
                    "drydock": {
                        "path": finding.path,
                        "layer": finding.layer_digest,
                        "remediation": finding.remediation,
                    }
                }),
            })
            .collect();
        let grade = format!("{:?}", report.grade);
        items.push(HarborItem {
            id: SCORE_ITEM_ID.to_owned(),
            package: "image".to_owned(),
            version: format!("{}/100 {grade}", report.score),
            fix_version: String::new(),
            severity: grade_severity(report.grade).to_owned(),
            description: format!(
                "drydock score {}/100, grade {grade}; the gate {}",
                report.score,
                if report.passed { "passed" } else { "failed" }
            ),
            links: vec![format!("{CHECK_PAGE_BASE}../scoring.md")],
            vendor_attributes: serde_json::json!({
                "drydock": {
                    "score": report.score,
                    "grade": grade,
                    "passed": report.passed,
                    "runnable": report.runnable,
                }
            }),
        });
        let severity = items
            .iter()
            .map(|item| item.severity.as_str())
            .max_by_key(|s| rank(s))
            .unwrap_or("Unknown")
            .to_owned();
        Self {
            generated_at: report.scanned_at.clone(),
            scanner_name: report.tool.name.clone(),
            scanner_version: report.tool.version.clone(),
            severity,
            vulnerabilities: items,
        }
    }

    /// The report about `artifact` in `flavour`.
    pub fn render(&self, artifact: &HarborArtifact, flavour: HarborFlavour) -> String {
        let generic = flavour == HarborFlavour::Generic;
        let harbor = HarborReport {
            generated_at: &self.generated_at,
            artifact,
            scanner: Scanner {
                name: &self.scanner_name,
                vendor: "drydock",
                version: &self.scanner_version,
            },
            severity: &self.severity,
            vulnerabilities: self
                .vulnerabilities
                .iter()
                .map(|item| Item {
                    item,
                    cwe_ids: generic.then_some([]),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&harbor).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImageInfo, LayerReport, ReportInput};
    use crate::score::Gate;
    use drydock_checks::Finding;

    fn finding(id: &str, severity: Severity, path: Option<&str>, layer: Option<usize>) -> Finding {
        Finding {
            id: id.into(),
            severity,
            title: format!("{id} title"),
            message: format!("{id} message about this image"),
            path: path.map(str::to_owned),
            layer,
            program: None,
            remediation: format!("fix {id}"),
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        let image = ImageInfo {
            source: "docker://registry.example/team/app@sha256:aa".into(),
            reference: Some("registry.example/team/app@sha256:aa".into()),
            manifest_digest: Some("sha256:aa".into()),
            config_digest: "sha256:cc".into(),
            platform: "linux/amd64".into(),
            layers: vec![LayerReport {
                index: 0,
                digest: Some("sha256:b0".into()),
                diff_id: "sha256:d0".into(),
                size: 1,
                uncompressed_size: 1,
                added_bytes: 1,
                wasted_bytes: 0,
                created_by: None,
            }],
            efficiency: 1.0,
            wasted_bytes: 0,
            user_wasted_percent: 0.0,
        };
        Report::build(
            image,
            findings,
            Vec::new(),
            ReportInput {
                gate: Gate::default(),
                policy: None,
                checks: &[],
                scanned_at: jiff::Timestamp::from_second(1_780_000_000).unwrap(),
            },
        )
    }

    fn artifact() -> HarborArtifact {
        HarborArtifact {
            repository: "team/app".into(),
            digest: "sha256:aa".into(),
            tag: None,
            mime_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        }
    }

    fn render(report: &Report, flavour: HarborFlavour) -> serde_json::Value {
        let direct = render_harbor(report, &artifact(), flavour);
        // What a server stores and renders later says the same.
        let stored = serde_json::to_string(&HarborFindings::from_report(report)).unwrap();
        let later: HarborFindings = serde_json::from_str(&stored).unwrap();
        assert_eq!(later.render(&artifact(), flavour), direct);
        serde_json::from_str(&direct).unwrap()
    }

    #[test]
    fn findings_become_items_as_harbor_stores_them() {
        let report = report(vec![
            finding(
                "elf.interpreter-missing",
                Severity::Critical,
                Some("/app/hello"),
                Some(0),
            ),
            finding("user.root", Severity::Medium, None, None),
            finding("size.wasted", Severity::Info, Some("/var/cache"), None),
        ]);
        let json = render(&report, HarborFlavour::Harbor);
        assert_eq!(json["artifact"]["repository"], "team/app");
        assert_eq!(json["artifact"]["digest"], "sha256:aa");
        assert_eq!(json["scanner"]["name"], "drydock");
        assert_eq!(json["scanner"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["generated_at"], "2026-05-28T20:26:40Z");
        assert_eq!(json["severity"], "Critical");
        let items = json["vulnerabilities"].as_array().unwrap();
        assert_eq!(items.len(), 4);
        let elf = &items[0];
        assert_eq!(elf["id"], "elf.interpreter-missing");
        assert_eq!(elf["package"], "/app/hello");
        assert_eq!(elf["version"], "sha256:d0");
        assert_eq!(elf["fix_version"], "");
        assert_eq!(elf["severity"], "Critical");
        assert_eq!(elf["description"], "elf.interpreter-missing title");
        assert_eq!(
            elf["links"][0],
            "https://drydock.dev/docs/checks/elf.interpreter-missing.md"
        );
        assert_eq!(elf["vendor_attributes"]["drydock"]["path"], "/app/hello");
        assert_eq!(elf["vendor_attributes"]["drydock"]["layer"], "sha256:d0");
        assert_eq!(
            elf["vendor_attributes"]["drydock"]["remediation"],
            "fix elf.interpreter-missing"
        );
        // Nothing image-specific in the description: Harbor keeps the first one for all.
        assert!(!elf["description"].as_str().unwrap().contains("message"));
        let root = items.iter().find(|i| i["id"] == "user.root").unwrap();
        assert_eq!(root["package"], "image-config");
        assert_eq!(root["version"], "");
        let info = items.iter().find(|i| i["id"] == "size.wasted").unwrap();
        assert_eq!(info["severity"], "Negligible");
        let score = items.last().unwrap();
        assert_eq!(score["id"], SCORE_ITEM_ID);
        assert_eq!(score["package"], "image");
        assert_eq!(score["severity"], "Critical");
        assert_eq!(
            score["version"],
            format!("{}/100 {:?}", report.score, report.grade)
        );
        // Harbor's native flavour has no cwe_ids.
        assert!(elf.get("cwe_ids").is_none());
    }

    #[test]
    fn the_generic_flavour_adds_its_fields_and_a_clean_image_is_negligible() {
        let report = report(Vec::new());
        let json = render(&report, HarborFlavour::Generic);
        let items = json["vulnerabilities"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], SCORE_ITEM_ID);
        assert_eq!(items[0]["version"], "100/100 A");
        assert_eq!(items[0]["cwe_ids"], serde_json::json!([]));
        assert_eq!(json["severity"], "Negligible");
        assert_eq!(
            HarborFlavour::Generic.mime(),
            "application/vnd.security.vulnerability.report; version=1.1"
        );
    }
}
