//! The report in every format: snapshots on the fixtures, the SARIF and JSON outputs against
//! their schemas, the policy file, the gate's exit codes, colour and progress on a terminal.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{drydock, fixture, fixtures, run, stderr, stdout, workspace};

const FORMATS: [&str; 7] = [
    "json",
    "sarif",
    "junit",
    "markdown",
    "intoto",
    "intoto-test-result",
    "gitlab-codequality",
];

/// What differs between two builds of the same fixtures (timestamps change digests and
/// compressed sizes; the CA bundle's expired count changes with the date), between two scans
/// (the time), and where the fixtures are.
fn filters() -> Vec<(String, &'static str)> {
    vec![
        (
            regex_escape(&fixtures().display().to_string()),
            "[fixtures]",
        ),
        (r"sha256:[0-9a-f]{64}".into(), "sha256:[digest]"),
        // in-toto digest sets: `"sha256": "<hex>"`.
        (r#""sha256": "[0-9a-f]{64}""#.into(), r#""sha256": "[hex]""#),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z".into(), "[time]"),
        (
            r#""drydock_version": "\d+\.\d+\.\d+""#.into(),
            r#""drydock_version": "[version]""#,
        ),
        (r"sha256:[0-9a-f]{12}\b".into(), "sha256:[short]"),
        (r#""size": \d+"#.into(), r#""size": "[size]""#),
        (r"\(\d+ expired\)".into(), "([n] expired)"),
        (
            r#""version": "\d+\.\d+\.\d+""#.into(),
            r#""version": "[version]""#,
        ),
        (
            r#""semanticVersion": "\d+\.\d+\.\d+""#.into(),
            r#""semanticVersion": "[version]""#,
        ),
        (r"drydock \d+\.\d+\.\d+".into(), "drydock [version]"),
    ]
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// Scans once, writing every format: human on stdout, the others through `--output`.
fn every_format(image: &str, extra: &[&str], dir: &Path) -> (i32, Vec<(&'static str, String)>) {
    let mut args = vec!["scan".to_owned(), image.to_owned(), "--no-policy".into()];
    for format in FORMATS {
        args.push("--output".into());
        args.push(format!("{format}={}", dir.join(format).display()));
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&refs);
    let code = output.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "{code}: {}", stderr(&output));
    let mut rendered = vec![("human", stdout(&output))];
    for format in FORMATS {
        rendered.push((format, fs::read_to_string(dir.join(format)).unwrap()));
    }
    (code, rendered)
}

/// A validator for the schema at `path`; `formats` also checks `format` keywords.
fn schema(path: &Path, formats: bool) -> jsonschema::Validator {
    // The OASIS SARIF 2.1.0 schema's `language` pattern has a stray `]` that ECMAScript reads
    // as a literal and Rust's regex engines reject; escape it, changing nothing it accepts.
    let text = fs::read_to_string(path)
        .unwrap()
        .replace("-[a-zA-Z]{2}]?$", "-[a-zA-Z]{2}\\\\]?$");
    let schema: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    jsonschema::options()
        .should_validate_formats(formats)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_valid(validator: &jsonschema::Validator, what: &str, text: &str) {
    let instance: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}:\n{}", errors.join("\n"));
}

const SNAPSHOT_FIXTURES: [&str; 5] = [
    "static-go",
    "glibc-on-musl",
    "lib-missing",
    "scratch",
    "secrets",
];

#[test]
fn every_format_matches_its_snapshot_and_its_schema() {
    let sarif = schema(
        &workspace().join("testdata/schemas/sarif-schema-2.1.0.json"),
        false,
    );
    let report = schema(&workspace().join("docs/report.schema.json"), true);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in filters() {
        settings.add_filter(&pattern, replacement);
    }
    settings.set_prepend_module_to_snapshot(false);
    for name in SNAPSHOT_FIXTURES {
        let (_, rendered) = every_format(&fixture(&format!("{name}/oci")), &[], dir.path());
        for (format, text) in &rendered {
            match *format {
                "sarif" => assert_valid(&sarif, &format!("{name} SARIF"), text),
                "json" => assert_valid(&report, &format!("{name} JSON"), text),
                "junit" => {
                    let junit = quick_junit::Report::deserialize_from_str(text)
                        .unwrap_or_else(|e| panic!("{name} JUnit: {e}"));
                    assert_eq!(
                        junit.test_suites[0].test_cases.len(),
                        drydock_checks::all().len(),
                        "{name}: one test case per check"
                    );
                }
                _ => {}
            }
            settings.bind(|| insta::assert_snapshot!(format!("{name}.{format}"), text));
        }
    }
}

#[test]
fn the_checked_in_json_schema_is_the_one_the_types_generate() {
    let output = run(&["json-schema"]);
    let generated = stdout(&output);
    let checked_in = fs::read_to_string(workspace().join("docs/report.schema.json")).unwrap();
    assert!(
        generated == checked_in,
        "docs/report.schema.json is stale: run `cargo run -- json-schema > docs/report.schema.json`"
    );
    // The schema describes the contract: a report missing a required field fails it.
    let validator = schema(&workspace().join("docs/report.schema.json"), true);
    let (_, mut report) = crate::support::scan_json(&[&fixture("static-go/oci")]);
    assert!(validator.is_valid(&report));
    report.as_object_mut().unwrap().remove("score");
    assert!(!validator.is_valid(&report));
}

#[test]
fn sarif_locates_findings_in_the_image_and_lists_every_check_as_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (_, rendered) = every_format(&fixture("lib-missing/oci"), &[], dir.path());
    let sarif: serde_json::Value = serde_json::from_str(&rendered[2].1).unwrap();
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), drydock_checks::all().len());
    let result = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "elf.library-missing")
        .unwrap();
    let index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[index]["id"], "elf.library-missing");
    assert!(
        rules[index]["help"]["markdown"]
            .as_str()
            .unwrap()
            .starts_with("# elf.library-missing")
    );
    assert_eq!(result["level"], "error");
    let location = &result["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(location["uri"], "app/greeter");
    assert_eq!(location["uriBaseId"], "IMAGEROOT");
    assert_eq!(result["properties"]["program"], "/app/greeter");
    assert!(
        result["properties"]["createdBy"]
            .as_str()
            .unwrap()
            .contains("greeter")
    );
}

#[test]
fn findings_carry_their_layer_digest_history_and_program() {
    let (_, report) = crate::support::scan_json(&[&fixture("lib-missing/oci")]);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "elf.library-missing")
        .unwrap();
    let layer = finding["layer"].as_u64().unwrap() as usize;
    let layers = report["image"]["layers"].as_array().unwrap();
    assert_eq!(finding["layer_digest"], layers[layer]["diff_id"]);
    assert_eq!(finding["created_by"], layers[layer]["created_by"]);
    assert_eq!(finding["program"], "/app/greeter");
}

#[test]
fn junit_fails_the_checks_at_or_above_the_gate_and_the_minimum_score() {
    let dir = tempfile::tempdir().unwrap();
    let (code, rendered) = every_format(
        &fixture("scratch/oci"),
        &["--fail-on", "medium", "--min-score", "80"],
        dir.path(),
    );
    assert_eq!(code, 1);
    let junit = quick_junit::Report::deserialize_from_str(&rendered[3].1).unwrap();
    let mut failed: Vec<String> = junit.test_suites[0]
        .test_cases
        .iter()
        .filter(|case| matches!(case.status, quick_junit::TestCaseStatus::NonSuccess { .. }))
        .map(|case| case.name.to_string())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "certs.missing",
            "drydock.min-score",
            "fs.tmp-missing",
            "user.root"
        ]
    );
    // At the default gate (critical), nothing in this image fails a test case.
    let (code, rendered) = every_format(&fixture("scratch/oci"), &[], dir.path());
    assert_eq!(code, 0);
    let junit = quick_junit::Report::deserialize_from_str(&rendered[3].1).unwrap();
    assert_eq!(junit.failures, 0);
}

fn write_policy(dir: &Path, text: &str) -> String {
    let path = dir.join("policy.toml");
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_policy_ignores_overrides_disables_and_reports_expired_ignores() {
    let image = fixture("secrets/oci");
    let (code, before) = crate::support::scan_json(&[&image, "--no-policy"]);
    assert_eq!(
        code, 1,
        "the secrets fixture fails on its missing entrypoint"
    );
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        r#"
fail-on = "high"

[checks."entrypoint.missing"]
enabled = false

[checks."secret.config"]
severity = "low"

[[ignore]]
id = "secret.file"
path = "/root/**"
reason = "throwaway keys of the test fixture"
expires = 2099-12-31

[[ignore]]
id = "secret.file"
path = "/app/.env"
reason = "rotated already"
expires = 2020-01-01

[[ignore]]
id = "fs.setuid"
reason = "kept to see that an unused ignore is reported"
"#,
    );
    let (code, after) = crate::support::scan_json(&[&image, "--policy", &policy]);
    let ids = |report: &serde_json::Value, key: &str| -> Vec<(String, String)> {
        report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_owned(),
                    f["path"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let findings = ids(&after, "findings");
    let suppressed = ids(&after, "suppressed");
    assert!(!findings.iter().any(|(id, _)| id == "entrypoint.missing"));
    assert!(
        suppressed
            .iter()
            .all(|(id, path)| id == "secret.file" && path.starts_with("/root/"))
    );
    assert_eq!(suppressed.len(), 3, "{suppressed:?}");
    // The expired ignore no longer applies, and the report says so.
    assert!(findings.contains(&("secret.file".into(), "/app/.env".into())));
    assert_eq!(after["policy"]["expired_ignores"][0]["path"], "/app/.env");
    assert!(
        after["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("expired on 2020-01-01"))
    );
    assert_eq!(after["policy"]["unused_ignores"][0]["id"], "fs.setuid");
    let severities: Vec<&str> = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "secret.config")
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["low", "low"]);
    assert_eq!(after["gate"]["fail_on"], "high");
    // /app/.env still fails the gate at high; the score counts only what is not ignored.
    assert_eq!((code, after["passed"].as_bool()), (1, Some(false)));
    assert!(after["score"].as_u64() > before["score"].as_u64());
    let suppressed_cost: u64 = after["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cost"].as_u64().unwrap())
        .sum();
    assert_eq!(suppressed_cost, 0);

    let human = stdout(&run(&["scan", &image, "--policy", &policy]));
    assert!(human.contains("3 finding(s) accepted by"), "{human}");
    assert!(human.contains("expired on 2020-01-01"), "{human}");

    // The command line beats the policy's threshold.
    let (code, report) =
        crate::support::scan_json(&[&image, "--policy", &policy, "--fail-on", "critical"]);
    assert_eq!(
        (code, report["gate"]["fail_on"].as_str()),
        (0, Some("critical"))
    );

    // drydock.toml in the working directory is found without --policy.
    fs::copy(&policy, dir.path().join("drydock.toml")).unwrap();
    let output = drydock()
        .args(["scan", "--format", "json", &image])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["policy"]["file"], "drydock.toml");
    let output = drydock()
        .args(["scan", "--format", "json", "--no-policy", &image])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["policy"].is_null());
}

#[test]
fn a_bad_policy_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("[[ignore]]\nid = \"secret.file\"\n", "reason"),
        (
            "[[ignore]]\nid = \"no.such-check\"\nreason = \"x\"\n",
            "no.such-check",
        ),
        ("fail-on = \"loud\"\n", "fail-on"),
        ("this is not toml", "policy.toml"),
    ] {
        let policy = write_policy(dir.path(), text);
        let output = run(&["scan", &fixture("static-go/oci"), "--policy", &policy]);
        assert_eq!(output.status.code(), Some(2), "{text}");
        let message = stderr(&output);
        assert!(message.contains("policy.toml"), "{message}");
        assert!(message.contains(expected), "{text}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn exit_codes_follow_the_gate() {
    let broken = fixture("glibc-on-musl/oci");
    let healthy = fixture("static-go/oci");
    let code = |args: &[&str]| run(args).status.code();
    assert_eq!(code(&["scan", &healthy, "--no-policy"]), Some(0));
    assert_eq!(code(&["scan", &broken, "--no-policy"]), Some(1));
    assert_eq!(code(&["scan", &broken, "--fail-on", "none"]), Some(0));
    assert_eq!(code(&["scan", &healthy, "--min-score", "101"]), Some(2));
    assert_eq!(code(&["scan", &healthy, "--fail-on", "severe"]), Some(2));
    assert_eq!(code(&["scan", &healthy, "--output", "pdf=x"]), Some(2));
    assert_eq!(code(&["scan", "/no/such/image.tar"]), Some(3));
    let message = stderr(&run(&["scan", "/no/such/image.tar"]));
    assert_eq!(message.matches("No such file").count(), 1, "{message}");
}

/// Runs drydock on a pseudo-terminal (util-linux `script`), returning what the terminal showed.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut line = String::from(env!("CARGO_BIN_EXE_drydock"));
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = Command::new("script");
    command
        .args(["-qefc", &line, "/dev/null"])
        .env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("running script(1)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let image = fixture("glibc-on-musl/oci");
    let shown = on_terminal(&["scan", &image, "--no-policy", "--quiet"], &[]);
    assert!(shown.contains("\x1b[1;31m"), "{shown:?}");
    let shown = on_terminal(
        &["scan", &image, "--no-policy", "--quiet"],
        &[("NO_COLOR", "1")],
    );
    assert!(shown.contains("score"), "{shown:?}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let piped = stdout(&run(&["scan", &image, "--no-policy"]));
    assert!(!piped.contains('\x1b'));
    let forced = stdout(&run(&["scan", &image, "--no-policy", "--color", "always"]));
    assert!(forced.contains('\x1b'));
}

#[test]
fn progress_only_on_a_terminal_and_never_with_quiet() {
    let image = fixture("debian/oci");
    let shown = on_terminal(&["scan", &image, "--no-policy", "--format", "json"], &[]);
    assert!(shown.contains("layers "), "no progress on a terminal");
    let quiet = on_terminal(
        &["scan", &image, "--no-policy", "--format", "json", "--quiet"],
        &[],
    );
    assert!(!quiet.contains("layers "), "progress despite --quiet");
    let output = run(&["scan", &image, "--no-policy", "--format", "json"]);
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn verbose_logs_say_what_drydock_does() {
    let output = run(&["scan", &fixture("static-go/oci"), "--no-policy", "-vv"]);
    let logs = stderr(&output);
    assert!(logs.contains("layer(s)"), "{logs}");
    assert!(logs.contains("walked in"), "{logs}");
}

#[test]
fn completions_are_scripts_the_shells_accept() {
    let output = run(&["completions", "bash"]);
    let script = stdout(&output);
    assert!(script.contains("drydock") && script.contains("--fail-on"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drydock.bash");
    fs::write(&path, &script).unwrap();
    let status = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(status.success(), "bash -n rejects the completion script");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let output = run(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        assert!(stdout(&output).contains("scan"), "{shell}");
    }
}

/// One row of the table in docs/scoring.md: fixture, (check, severity, count, cost), score, grade.
type ScoreRow = (String, Vec<(String, String, usize, u64)>, u64, String);

fn parse_score_row(line: &str) -> ScoreRow {
    let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
    assert_eq!(cells.len(), 3, "{line}");
    let name = cells[0].trim_matches('`').to_owned();
    let checks = if cells[1] == "none" {
        Vec::new()
    } else {
        cells[1]
            .split("; ")
            .map(|part| {
                let mut words = part.split(' ');
                let id = words.next().unwrap().trim_matches('`').to_owned();
                let severity = words.next().unwrap().to_owned();
                let (mut count, mut cost) = (1, 0);
                for word in words {
                    if let Some(n) = word.strip_prefix('×') {
                        count = n.parse().unwrap();
                    } else if let Some(n) = word.strip_prefix('−') {
                        cost = n.parse().unwrap();
                    }
                }
                (id, severity, count, cost)
            })
            .collect()
    };
    let verdict = cells[2].rsplit("**").nth(1).unwrap();
    let (score, grade) = verdict.split_once(' ').unwrap();
    (name, checks, score.parse().unwrap(), grade.to_owned())
}

#[test]
fn the_scoring_doc_explains_every_fixture() {
    let doc = fs::read_to_string(workspace().join("docs/scoring.md")).unwrap();
    let start = doc.find("fixture-scores:begin").unwrap();
    let end = doc.find("<!-- fixture-scores:end").unwrap();
    let rows: Vec<ScoreRow> = doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(parse_score_row)
        .collect();
    let mut names: Vec<String> = fs::read_dir(fixtures())
        .unwrap()
        .filter_map(Result::ok)
        // The main set's images; fixture groups carry a stamp of their own and their own suites.
        .filter(|e| e.path().join("oci").is_dir() && !e.path().join(".stamp").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let documented: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(documented, names, "run `cargo xtask scores`");
    for (name, checks, score, grade) in rows {
        let image = if name == "multi" {
            format!("oci:{}:go", fixture("multi/oci"))
        } else {
            fixture(&format!("{name}/oci"))
        };
        let (_, report) = crate::support::scan_json(&[&image, "--no-policy"]);
        let mut actual: Vec<(String, String, usize, u64)> = Vec::new();
        for f in report["findings"].as_array().unwrap() {
            let id = f["id"].as_str().unwrap();
            let cost = f["cost"].as_u64().unwrap();
            match actual.iter_mut().find(|(known, ..)| known == id) {
                Some(entry) => {
                    entry.2 += 1;
                    entry.3 += cost;
                }
                None => actual.push((
                    id.to_owned(),
                    f["severity"].as_str().unwrap().to_owned(),
                    1,
                    cost,
                )),
            }
        }
        assert_eq!(checks, actual, "{name}: run `cargo xtask scores`");
        assert_eq!(
            (score, grade.as_str()),
            (
                report["score"].as_u64().unwrap(),
                report["grade"].as_str().unwrap()
            ),
            "{name}"
        );
    }
}
