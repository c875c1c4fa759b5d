//! The attestation and CI formats: in-toto Statements (drydock's predicate and the test-result
//! predicate) field by field against the in-toto v1 specs, GitLab Code Quality against GitLab's
//! documented format, fingerprints across scans and source forms, and SARIF's
//! `security-severity` against GitHub's bands.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use serde_json::Value;

use crate::support::{fixture, run, sha256, stderr};

/// Scans once; returns the exit code, the JSON report and each of `formats`, parsed.
fn scan(image: &str, extra: &[&str], formats: &[&str]) -> (i32, Value, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let file = |format: &str| dir.path().join(format).display().to_string();
    let mut args = vec!["scan".to_owned(), image.to_owned()];
    for format in formats.iter().chain(&["json"]) {
        args.push("--output".into());
        args.push(format!("{format}={}", file(format)));
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    if !extra.contains(&"--policy") {
        args.push("--no-policy".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&refs);
    let code = output.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "{code}: {}", stderr(&output));
    let read = |format: &str| -> Value {
        let text = fs::read_to_string(file(format)).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{format}: not JSON: {e}\n{text}"))
    };
    let rendered = formats.iter().map(|f| read(f)).collect();
    (code, read("json"), rendered)
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    items.into_iter().collect()
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// in-toto `spec/v1/statement.md`: `_type`, `subject` (ResourceDescriptors, each with a
/// `digest`), `predicateType`, `predicate`, and nothing else; returns the subject.
fn assert_statement(statement: &Value, predicate_type: &str) -> (String, BTreeMap<String, String>) {
    assert_eq!(
        keys(statement),
        set(["_type", "subject", "predicateType", "predicate"])
    );
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], predicate_type);
    assert!(statement["predicate"].is_object());
    let subjects = statement["subject"].as_array().unwrap();
    assert_eq!(subjects.len(), 1, "one image, one subject");
    let subject = &subjects[0];
    assert_eq!(keys(subject), set(["name", "digest"]));
    let digest: BTreeMap<String, String> =
        serde_json::from_value(subject["digest"].clone()).unwrap();
    assert_eq!(
        digest.keys().map(String::as_str).collect::<Vec<_>>(),
        ["sha256"]
    );
    assert!(is_lower_hex(&digest["sha256"], 64), "{digest:?}");
    (subject["name"].as_str().unwrap().to_owned(), digest)
}

fn hex_of(digest: &Value) -> String {
    digest
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_owned()
}

#[test]
fn intoto_statement_carries_drydocks_predicate_field_by_field() {
    let (code, report, rendered) = scan(&fixture("glibc-on-musl/oci"), &[], &["intoto"]);
    assert_eq!(code, 1);
    let statement = &rendered[0];
    let (name, digest) = assert_statement(statement, "https://drydock.dev/attestation/report/v1");
    // An OCI layout records only a tag: the spec's "_" says the name means nothing.
    assert_eq!(name, "_");
    assert_eq!(
        digest["sha256"],
        hex_of(&report["image"]["manifest_digest"])
    );

    let predicate = &statement["predicate"];
    assert_eq!(
        keys(predicate),
        set([
            "drydock_version",
            "scanned_at",
            "gate",
            "score",
            "grade",
            "runnable",
            "policy_digest",
            "image",
            "counts",
            "findings"
        ])
    );
    assert_eq!(predicate["drydock_version"], report["tool"]["version"]);
    assert_eq!(predicate["scanned_at"], report["scanned_at"]);
    let scanned_at = predicate["scanned_at"].as_str().unwrap();
    assert!(scanned_at.ends_with('Z'), "UTC: {scanned_at}");
    scanned_at
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{scanned_at} is not RFC 3339: {e}"));
    assert_eq!(
        predicate["gate"],
        serde_json::json!({"fail_on": "critical", "min_score": null, "passed": false})
    );
    assert_eq!(predicate["score"], report["score"]);
    assert_eq!(predicate["grade"], report["grade"]);
    assert_eq!(predicate["runnable"], false);
    assert!(predicate["policy_digest"].is_null(), "--no-policy");
    assert_eq!(
        predicate["image"]["manifest_digest"],
        report["image"]["manifest_digest"]
    );
    assert_eq!(
        predicate["image"]["config_digest"],
        report["image"]["config_digest"]
    );
    assert_eq!(predicate["image"]["platform"], report["image"]["platform"]);

    let findings = report["findings"].as_array().unwrap();
    for severity in ["critical", "high", "medium", "low", "info"] {
        let expected = findings
            .iter()
            .filter(|f| f["severity"] == severity)
            .count();
        assert_eq!(predicate["counts"][severity], expected, "{severity}");
    }
    assert_eq!(predicate["counts"]["suppressed"], 0);
    let listed = predicate["findings"].as_array().unwrap();
    assert_eq!(listed.len(), findings.len());
    assert!(listed.iter().any(|f| f["id"] == "elf.interpreter-missing"));
    for (ours, full) in listed.iter().zip(findings) {
        assert_eq!(
            keys(ours),
            set(["id", "severity", "path", "layer", "layer_digest"])
        );
        for key in ["id", "severity", "path", "layer", "layer_digest"] {
            assert_eq!(ours[key], full[key], "{key}");
        }
    }
}

#[test]
fn the_subject_is_the_repository_and_the_manifest_digest_else_the_config_digest() {
    let (_, report, rendered) = scan(&fixture("static-go/docker25.tar"), &[], &["intoto"]);
    let (name, digest) =
        assert_statement(&rendered[0], "https://drydock.dev/attestation/report/v1");
    // `drydock-fixtures/static-go:latest` as cosign names it: registry, no tag.
    assert_eq!(name, "index.docker.io/drydock-fixtures/static-go");
    assert_eq!(
        digest["sha256"],
        hex_of(&report["image"]["manifest_digest"])
    );

    // A legacy `docker save` archive has no manifest: the config digest stands in, and the
    // predicate says so with a null manifest digest.
    let (_, report, rendered) = scan(&fixture("static-go/docker.tar"), &[], &["intoto"]);
    assert!(report["image"]["manifest_digest"].is_null());
    let (name, digest) =
        assert_statement(&rendered[0], "https://drydock.dev/attestation/report/v1");
    assert_eq!(name, "index.docker.io/drydock-fixtures/static-go");
    assert_eq!(digest["sha256"], hex_of(&report["image"]["config_digest"]));
    assert!(rendered[0]["predicate"]["image"]["manifest_digest"].is_null());
}

#[test]
fn a_policy_is_named_by_the_digest_of_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("drydock.toml");
    let text = "fail-on = \"medium\"\n\n[checks.\"fs.tmp-missing\"]\nenabled = false\n";
    fs::write(&policy, text).unwrap();
    let policy = policy.display().to_string();
    let (code, report, rendered) = scan(
        &fixture("scratch/oci"),
        &["--policy", &policy],
        &["intoto", "intoto-test-result"],
    );
    assert_eq!(code, 1, "scratch runs as root: medium");
    let digest = sha256(text.as_bytes());
    assert_eq!(report["policy"]["digest"], digest.as_str());
    assert_eq!(rendered[0]["predicate"]["policy_digest"], digest.as_str());
    assert_eq!(rendered[0]["predicate"]["gate"]["fail_on"], "medium");

    let predicate = &rendered[1]["predicate"];
    assert_eq!(
        predicate["configuration"],
        serde_json::json!([{
            "name": policy,
            "digest": {"sha256": digest.strip_prefix("sha256:").unwrap()}
        }])
    );
    // A disabled check did not run: it is no test at all.
    for list in ["passedTests", "warnedTests", "failedTests"] {
        assert!(
            !strings(&predicate[list]).contains(&"fs.tmp-missing"),
            "{list}"
        );
    }
}

fn test_result(image: &str, extra: &[&str]) -> (i32, Value, Value) {
    let (code, report, rendered) = scan(image, extra, &["intoto-test-result"]);
    let statement = rendered.into_iter().next().unwrap();
    assert_statement(
        &statement,
        "https://in-toto.io/attestation/test-result/v0.1",
    );
    let predicate = statement["predicate"].clone();
    // `spec/predicates/test-result.md`: `result` and `configuration` required, `url` and the
    // three lists optional; nothing else.
    assert!(
        keys(&predicate).is_subset(&set([
            "result",
            "configuration",
            "url",
            "passedTests",
            "warnedTests",
            "failedTests"
        ])),
        "{predicate}"
    );
    assert!(predicate["configuration"].is_array());
    (code, report, predicate)
}

#[test]
fn the_test_result_fails_warns_and_passes_checks_by_the_gate() {
    let image = fixture("scratch/oci");
    let (code, report, predicate) =
        test_result(&image, &["--fail-on", "medium", "--min-score", "80"]);
    assert_eq!(code, 1);
    assert_eq!(predicate["result"], "FAILED");
    assert_eq!(predicate["configuration"], serde_json::json!([]));
    let mut failed = strings(&predicate["failedTests"]);
    failed.sort();
    // The same test cases JUnit fails on this image and gate.
    assert_eq!(
        failed,
        [
            "certs.missing",
            "drydock.min-score",
            "fs.tmp-missing",
            "user.root"
        ]
    );
    // Every check is listed exactly once, and the score as one more test.
    let mut all: Vec<&str> = ["passedTests", "warnedTests", "failedTests"]
        .iter()
        .flat_map(|list| strings(&predicate[*list]))
        .collect();
    all.sort();
    let mut expected: Vec<&str> = drydock_checks::all().iter().map(|c| c.id()).collect();
    expected.push("drydock.min-score");
    expected.sort();
    assert_eq!(all, expected);
    // A check whose findings are all below the gate is warned.
    let below_gate: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("low" | "info")))
        .map(|f| f["id"].as_str().unwrap())
        .filter(|id| !failed.contains(id))
        .collect();
    assert_eq!(set(strings(&predicate["warnedTests"])), below_gate);

    // At the default gate (critical) nothing fails: the findings below it warn.
    let (code, _, predicate) = test_result(&image, &[]);
    assert_eq!(code, 0);
    assert_eq!(predicate["result"], "WARNED");
    assert!(strings(&predicate["failedTests"]).is_empty());
    assert!(strings(&predicate["warnedTests"]).contains(&"user.root"));
    assert!(!strings(&predicate["passedTests"]).contains(&"drydock.min-score"));

    // With no finding left to warn about (the one check that finds something disabled), the
    // run passes.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("drydock.toml");
    fs::write(&policy, "[checks.\"certs.invalid\"]\nenabled = false\n").unwrap();
    let (code, report, predicate) = test_result(
        &fixture("user-named/oci"),
        &["--policy", &policy.display().to_string()],
    );
    assert_eq!(code, 0);
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(predicate["result"], "PASSED");
    assert!(strings(&predicate["warnedTests"]).is_empty());
    assert!(strings(&predicate["failedTests"]).is_empty());
    assert_eq!(
        strings(&predicate["passedTests"]).len(),
        drydock_checks::all().len() - 1
    );
}

/// GitLab's documented Code Quality issue: `description`, `check_name`, `fingerprint`,
/// `severity` (info, minor, major, critical, blocker), `location.path`, `location.lines.begin`.
fn assert_codequality(issues: &Value, report: &Value) {
    let issues = issues.as_array().unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(issues.len(), findings.len(), "one issue per finding");
    for (issue, finding) in issues.iter().zip(findings) {
        assert_eq!(
            keys(issue),
            set([
                "description",
                "check_name",
                "fingerprint",
                "severity",
                "location"
            ])
        );
        assert!(!issue["description"].as_str().unwrap().is_empty());
        assert_eq!(issue["check_name"], finding["id"]);
        assert!(is_lower_hex(issue["fingerprint"].as_str().unwrap(), 64));
        let expected = match finding["severity"].as_str().unwrap() {
            "critical" => "blocker",
            "high" => "critical",
            "medium" => "major",
            "low" => "minor",
            "info" => "info",
            other => panic!("severity {other}"),
        };
        assert_eq!(issue["severity"], expected);
        let location = &issue["location"];
        assert_eq!(keys(location), set(["path", "lines"]));
        assert_eq!(location["lines"], serde_json::json!({"begin": 1}));
        let path = location["path"].as_str().unwrap();
        match finding["path"].as_str() {
            // Relative to the image's root, as GitLab wants paths relative.
            Some(image_path) => assert_eq!(format!("/{path}"), image_path),
            None => assert!(!path.is_empty()),
        }
    }
    let fingerprints: BTreeSet<&str> = issues
        .iter()
        .map(|i| i["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fingerprints.len(), issues.len(), "fingerprints are unique");
}

fn fingerprints(issues: &Value) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = issues
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["check_name"].as_str().unwrap().to_owned(),
                i["location"]["path"].as_str().unwrap().to_owned(),
                i["fingerprint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn code_quality_follows_gitlabs_format_with_stable_fingerprints() {
    let (_, report, rendered) = scan(&fixture("secrets/oci"), &[], &["gitlab-codequality"]);
    assert_codequality(&rendered[0], &report);
    assert!(
        rendered[0].as_array().unwrap().len() > 2,
        "the secrets fixture has several findings"
    );
    // Another run, the same fingerprints.
    let (_, _, again) = scan(&fixture("secrets/oci"), &[], &["gitlab-codequality"]);
    assert_eq!(fingerprints(&again[0]), fingerprints(&rendered[0]));

    // The same image in other forms: the same findings under the same name, the same
    // fingerprints, though the legacy archive has no manifest digest.
    let named: Vec<_> = ["docker.tar", "docker.tar.gz", "docker25.tar"]
        .iter()
        .map(|form| {
            let (_, report, rendered) = scan(
                &fixture(&format!("static-go/{form}")),
                &[],
                &["gitlab-codequality"],
            );
            assert_codequality(&rendered[0], &report);
            assert!(!rendered[0].as_array().unwrap().is_empty(), "{form}");
            fingerprints(&rendered[0])
        })
        .collect();
    assert_eq!(named[0], named[1]);
    assert_eq!(named[0], named[2]);
    let unnamed: Vec<_> = ["oci", "oci.tar"]
        .iter()
        .map(|form| {
            let (_, _, rendered) = scan(
                &fixture(&format!("static-go/{form}")),
                &[],
                &["gitlab-codequality"],
            );
            fingerprints(&rendered[0])
        })
        .collect();
    assert_eq!(unnamed[0], unnamed[1]);
    // The image's name is part of the fingerprint: two images' findings stay apart.
    assert_ne!(unnamed[0][0].2, named[0][0].2);
}

#[test]
fn sarif_rules_and_results_carry_githubs_security_severity() {
    // GitHub's bands: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
    let band = |severity: &str| -> (f64, f64) {
        match severity {
            "critical" => (9.0 + f64::EPSILON, 10.0),
            "high" => (7.0, 8.9),
            "medium" => (4.0, 6.9),
            "low" => (0.1, 3.9),
            "info" => (0.0, 0.0),
            other => panic!("severity {other}"),
        }
    };
    let check = |holder: &Value, what: &str| {
        let severity = holder["properties"]["severity"].as_str().unwrap();
        let text = holder["properties"]["security-severity"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no security-severity as a string"));
        let score: f64 = text.parse().unwrap();
        let (low, high) = band(severity);
        assert!(
            (low..=high).contains(&score),
            "{what}: {severity} at {score}"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("drydock.toml");
    fs::write(&policy, "[checks.\"user.root\"]\nseverity = \"high\"\n").unwrap();
    let policy = policy.display().to_string();
    for extra in [&[][..], &["--policy", &policy][..]] {
        let (_, _, rendered) = scan(&fixture("secrets/oci"), extra, &["sarif"]);
        let run = &rendered[0]["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), drydock_checks::all().len());
        for rule in rules {
            check(rule, rule["id"].as_str().unwrap());
        }
        let results = run["results"].as_array().unwrap();
        assert!(!results.is_empty());
        for result in results {
            check(result, result["ruleId"].as_str().unwrap());
        }
        let root = rules.iter().find(|r| r["id"] == "user.root").unwrap();
        let expected = if extra.is_empty() { "5.5" } else { "8.0" };
        assert_eq!(
            root["properties"]["security-severity"], expected,
            "the policy's severity configures the rule"
        );
    }
}

#[test]
fn the_new_formats_are_accepted_on_standard_output_too() {
    for format in ["intoto", "intoto-test-result", "gitlab-codequality"] {
        let output = run(&[
            "scan",
            &fixture("static-go/oci"),
            "--no-policy",
            "--format",
            format,
        ]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{format}: {}",
            stderr(&output)
        );
        serde_json::from_slice::<Value>(&output.stdout)
            .unwrap_or_else(|e| panic!("{format}: not JSON: {e}"));
    }
    let output = run(&["scan", &fixture("static-go/oci"), "--output", "intoto2=x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("gitlab-codequality"),
        "the error lists the formats: {}",
        stderr(&output)
    );
}
