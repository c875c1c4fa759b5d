//! in-toto Statements v1, for admission controllers and policy engines that check attestations
//! (cosign, Kyverno, Ratify): drydock's own predicate, and the standard test-result predicate
//! for engines that only know standard types.
//!
//! The subject is the image as a registry knows it: its repository name as cosign writes it and
//! its manifest digest (subjects are matched by digest only). A legacy `docker save` archive has
//! no manifest, so its subject carries the config digest instead (`docs/report.md` says so).

use std::collections::BTreeMap;

use drydock_checks::Severity;
use serde::Serialize;

use crate::model::{Report, ReportFinding};
use crate::score::Grade;

/// The Statement layer's type, fixed by the in-toto v1 spec.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// drydock's predicate, under a URI the project controls (`docs/report.md` describes it).
pub const REPORT_PREDICATE_TYPE: &str = "https://drydock.dev/attestation/report/v1";
/// in-toto's standard test-result predicate.
pub const TEST_RESULT_PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";
/// The test that stands for `--min-score` in the test-result predicate (as in JUnit).
pub const MIN_SCORE_TEST: &str = "drydock.min-score";

#[derive(Serialize)]
struct Statement<P> {
    #[serde(rename = "_type")]
    statement_type: &'static str,
    subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: P,
}

/// in-toto's ResourceDescriptor, with the two fields drydock fills.
#[derive(Serialize)]
struct ResourceDescriptor {
    name: String,
    /// Algorithm -> lowercase hex, as in `{"sha256": "…"}`.
    digest: BTreeMap<String, String>,
}

/// `sha256:abc…` as an in-toto DigestSet.
fn digest_set(digest: &str) -> BTreeMap<String, String> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    BTreeMap::from([(algorithm.to_owned(), hex.to_owned())])
}

fn subject(report: &Report) -> Vec<ResourceDescriptor> {
    vec![ResourceDescriptor {
        // The spec's name for "not meaningful": a local path would only vary between machines.
        name: report.image.repository().unwrap_or_else(|| "_".to_owned()),
        digest: digest_set(report.image.shown_digest()),
    }]
}

fn statement<P: Serialize>(report: &Report, predicate_type: &'static str, predicate: P) -> String {
    let statement = Statement {
        statement_type: STATEMENT_TYPE,
        subject: subject(report),
        predicate_type,
        predicate,
    };
    let mut json = serde_json::to_string_pretty(&statement)
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

#[derive(Serialize)]
struct ReportPredicate<'a> {
    drydock_version: &'a str,
    scanned_at: &'a str,
    gate: PredicateGate,
    score: u32,
    grade: Grade,
    runnable: bool,
    /// `sha256:<hex>` of the policy file, null without one.
    policy_digest: Option<&'a str>,
    image: PredicateImage<'a>,
    counts: Counts,
    findings: Vec<PredicateFinding<'a>>,
}

#[derive(Serialize)]
struct PredicateGate {
    fail_on: Option<Severity>,
    min_score: Option<u32>,
    passed: bool,
}

/// What the subject cannot say: whether its digest is the manifest's (null: it is the
/// config's), and the platform.
#[derive(Serialize)]
struct PredicateImage<'a> {
    manifest_digest: Option<&'a str>,
    config_digest: &'a str,
    platform: &'a str,
}

/// Findings that count, per severity, and those a policy ignore accepted.
#[derive(Serialize)]
struct Counts {
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
    info: usize,
    suppressed: usize,
}

#[derive(Serialize)]
struct PredicateFinding<'a> {
    id: &'a str,
    severity: Severity,
    path: Option<&'a str>,
    layer: Option<usize>,
    layer_digest: Option<&'a str>,
}

/// The report as an in-toto Statement with drydock's predicate.
pub fn render_intoto(report: &Report) -> String {
    let count = |severity: Severity| {
        report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    };
    let image = &report.image;
    let predicate = ReportPredicate {
        drydock_version: &report.tool.version,
        scanned_at: &report.scanned_at,
        gate: PredicateGate {
            fail_on: report.gate.fail_on,
            min_score: report.gate.min_score,
            passed: report.passed,
        },
        score: report.score,
        grade: report.grade,
        runnable: report.runnable,
        policy_digest: report.policy.as_ref().map(|p| p.digest.as_str()),
        image: PredicateImage {
            manifest_digest: image.manifest_digest.as_deref(),
            config_digest: &image.config_digest,
            platform: &image.platform,
        },
        counts: Counts {
            critical: count(Severity::Critical),
            high: count(Severity::High),
            medium: count(Severity::Medium),
            low: count(Severity::Low),
            info: count(Severity::Info),
            suppressed: report.suppressed.len(),
        },
        findings: report
            .findings
            .iter()
            .map(|f| PredicateFinding {
                id: &f.id,
                severity: f.severity,
                path: f.path.as_deref(),
                layer: f.layer,
                layer_digest: f.layer_digest.as_deref(),
            })
            .collect(),
    };
    statement(report, REPORT_PREDICATE_TYPE, predicate)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestResultPredicate {
    result: TestResult,
    configuration: Vec<ResourceDescriptor>,
    passed_tests: Vec<String>,
    warned_tests: Vec<String>,
    failed_tests: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum TestResult {
    Passed,
    Warned,
    Failed,
}

/// How one check did: failed with a finding at or above the gate, warned with findings below
/// it only, passed without findings.
fn check_result(report: &Report, id: &str) -> TestResult {
    let findings: Vec<&ReportFinding> = report.findings.iter().filter(|f| f.id == id).collect();
    let at_or_above_gate =
        |f: &&ReportFinding| report.gate.fail_on.is_some_and(|t| f.severity <= t);
    if findings.iter().any(at_or_above_gate) {
        TestResult::Failed
    } else if findings.is_empty() {
        TestResult::Passed
    } else {
        TestResult::Warned
    }
}

/// The report as an in-toto Statement with the standard test-result predicate: one test per
/// enabled check (disabled checks did not run and are listed nowhere), plus
/// `drydock.min-score` when the gate has a minimum score; the policy file, when there is one,
/// is the configuration.
pub fn render_intoto_test_result(report: &Report) -> String {
    let disabled = report
        .policy
        .as_ref()
        .map(|p| p.disabled.as_slice())
        .unwrap_or_default();
    let mut predicate = TestResultPredicate {
        result: TestResult::Passed,
        configuration: report
            .policy
            .iter()
            .map(|p| ResourceDescriptor {
                name: p.file.clone(),
                digest: digest_set(&p.digest),
            })
            .collect(),
        passed_tests: Vec::new(),
        warned_tests: Vec::new(),
        failed_tests: Vec::new(),
    };
    let mut record = |test: &str, result: TestResult| {
        match result {
            TestResult::Passed => &mut predicate.passed_tests,
            TestResult::Warned => &mut predicate.warned_tests,
            TestResult::Failed => &mut predicate.failed_tests,
        }
        .push(test.to_owned());
    };
    for check in drydock_checks::all() {
        let id = check.id();
        if !disabled.iter().any(|d| d == id) {
            record(id, check_result(report, id));
        }
    }
    if let Some(min) = report.gate.min_score {
        let result = if report.score >= min {
            TestResult::Passed
        } else {
            TestResult::Failed
        };
        record(MIN_SCORE_TEST, result);
    }
    predicate.result = if !report.passed {
        TestResult::Failed
    } else if !predicate.warned_tests.is_empty() {
        TestResult::Warned
    } else {
        TestResult::Passed
    };
    statement(report, TEST_RESULT_PREDICATE_TYPE, predicate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_become_digest_sets() {
        assert_eq!(
            digest_set("sha256:abc"),
            BTreeMap::from([("sha256".to_owned(), "abc".to_owned())])
        );
        assert_eq!(
            digest_set("sha512:def"),
            BTreeMap::from([("sha512".to_owned(), "def".to_owned())])
        );
    }

    #[test]
    fn test_results_are_spelled_as_the_predicate_spells_them() {
        for (result, text) in [
            (TestResult::Passed, "\"PASSED\""),
            (TestResult::Warned, "\"WARNED\""),
            (TestResult::Failed, "\"FAILED\""),
        ] {
            assert_eq!(serde_json::to_string(&result).unwrap(), text);
        }
    }
}
