//! JUnit XML, for CI systems that show test reports (GitLab, Jenkins, Azure DevOps).
//!
//! One test suite for the image, one test case per check: a check fails when it has findings at
//! or above the gate's severity, passes (listing lesser findings in its output) otherwise, and
//! is skipped when the policy disables it. A score below `--min-score` is one more failing case.

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use drydock_layers::path::printable_str as safe;

use crate::model::{Report, ReportFinding};

fn describe(findings: &[&ReportFinding]) -> String {
    let mut out = String::new();
    for f in findings {
        // XML cannot carry control characters at all: escaped visibly rather than dropped.
        let _ = writeln!(
            out,
            "[{}] {}\n  {}\n  fix: {}",
            f.severity,
            safe(f.path.as_deref().unwrap_or("(image)")),
            safe(&f.message),
            safe(&f.remediation)
        );
        if let Some(created_by) = &f.created_by {
            let _ = writeln!(
                out,
                "  layer {}: {}",
                f.layer.unwrap_or_default(),
                safe(created_by)
            );
        }
    }
    out
}

/// The report as JUnit XML.
pub fn render_junit(report: &Report) -> String {
    let name = report.image.name();
    let mut suite = TestSuite::new(format!("drydock {}", safe(&name)));
    let disabled = report
        .policy
        .as_ref()
        .map(|p| p.disabled.clone())
        .unwrap_or_default();
    for check in drydock_checks::all() {
        let id = check.id();
        let findings: Vec<&ReportFinding> = report.findings.iter().filter(|f| f.id == id).collect();
        let failing: Vec<&ReportFinding> = findings
            .iter()
            .copied()
            .filter(|f| report.gate.fail_on.is_some_and(|t| f.severity <= t))
            .collect();
        let status = if disabled.iter().any(|d| d == id) {
            let mut status = TestCaseStatus::skipped();
            status.set_message("disabled by the policy");
            status
        } else if failing.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_type(failing[0].severity.as_str());
            status.set_message(format!(
                "{} finding(s) at or above {}: {}",
                failing.len(),
                report.gate.fail_on.map(|s| s.as_str()).unwrap_or("none"),
                failing[0].title
            ));
            status.set_description(describe(&failing));
            status
        };
        let mut case = TestCase::new(id, status);
        case.set_classname(format!("drydock.{}", id.split('.').next().unwrap_or(id)));
        let passing: Vec<&ReportFinding> = findings
            .iter()
            .copied()
            .filter(|f| !failing.iter().any(|g| std::ptr::eq(*g, *f)))
            .collect();
        if !passing.is_empty() {
            case.set_system_out(describe(&passing));
        }
        suite.add_test_case(case);
    }
    if let Some(min) = report.gate.min_score {
        let status = if report.score >= min {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_type("score");
            status.set_message(format!("score {} is below the minimum {min}", report.score));
            status
        };
        let mut case = TestCase::new("drydock.min-score", status);
        case.set_classname("drydock.score");
        suite.add_test_case(case);
    }
    suite.add_property(("score", report.score.to_string().as_str()));
    suite.add_property(("grade", format!("{:?}", report.grade).as_str()));
    suite.add_property(("config_digest", report.image.config_digest.as_str()));
    let mut junit = JunitReport::new("drydock");
    junit.add_test_suite(suite);
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- drydock: cannot write JUnit XML: {e} -->\n"))
}
