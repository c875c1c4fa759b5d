//! The CI recipes in `ci/`: their YAML is parsed, its structure checked, and the shell of their
//! drydock steps executed with `bash` on real images, the way a runner would run it (inputs
//! and variables given as environment, the built `drydock` first on PATH).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};

use crate::support::{fixture, workspace};

const ACTION: &str = "ci/github/action.yml";
const GITLAB: &str = "ci/gitlab/drydock.gitlab-ci.yml";

fn load(path: &str) -> Value {
    let text = fs::read_to_string(workspace().join(path)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drydock"))
}

/// The system PATH, without any directory holding a `drydock`.
fn system_path() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.join("drydock").exists())
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// PATH with the built binary's directory first, as a job that installed drydock has it.
fn path_with_drydock() -> String {
    format!("{}:{}", bin().parent().unwrap().display(), system_path())
}

fn missing_image() -> String {
    workspace()
        .join("target/no-such-image.tar")
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The GitHub composite action.

struct ActionRun {
    dir: tempfile::TempDir,
    /// The step that ended the run (the last one when all passed) and its exit status.
    last_step: String,
    status: i32,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    log: String,
}

/// `${{ inputs.x }}` and `${{ steps.id.outputs.y }}`, the only expressions the action's `env:`
/// blocks use.
fn expression(
    value: &str,
    inputs: &BTreeMap<String, String>,
    outputs: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let Some(inner) = value
        .trim()
        .strip_prefix("${{")
        .and_then(|v| v.strip_suffix("}}"))
    else {
        assert!(!value.contains("${{"), "unsupported expression in {value}");
        return value.to_owned();
    };
    let parts: Vec<&str> = inner.trim().split('.').collect();
    match parts.as_slice() {
        ["inputs", name] => inputs
            .get(*name)
            .unwrap_or_else(|| panic!("no input {name}"))
            .clone(),
        ["steps", id, "outputs", name] => outputs
            .get(*id)
            .and_then(|o| o.get(*name))
            .cloned()
            .unwrap_or_default(),
        _ => panic!("unsupported expression {value}"),
    }
}

fn run_action(given: &[(&str, &str)], path: &str) -> ActionRun {
    let action = load(ACTION);
    let mut inputs = BTreeMap::new();
    for (name, spec) in action["inputs"].as_mapping().unwrap() {
        let default = spec.get("default").map(text).unwrap_or("");
        inputs.insert(text(name).to_owned(), default.to_owned());
    }
    for (name, value) in given {
        assert!(inputs.contains_key(*name), "the action has no input {name}");
        inputs.insert((*name).to_owned(), (*value).to_owned());
    }
    let dir = tempfile::tempdir().unwrap();
    let runner_temp = dir.path().join("runner-temp");
    fs::create_dir_all(&runner_temp).unwrap();
    let mut outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut log = String::new();
    let mut last_step = String::new();
    let mut status = 0;
    for (index, step) in action["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .enumerate()
    {
        let name = text(&step["name"]).to_owned();
        if step.get("uses").is_some() {
            continue; // the upload: checked by `action_structure`
        }
        let script = text(&step["run"]);
        assert!(
            !script.contains("${{"),
            "step {name}: expressions belong in env:, not in the script"
        );
        assert_eq!(text(&step["shell"]), "bash", "step {name}");
        let output_file = dir.path().join(format!("github-output-{index}"));
        fs::write(&output_file, "").unwrap();
        let mut command = Command::new("bash");
        // What GitHub runs for `shell: bash`.
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", dir.path())
            .env("RUNNER_TEMP", &runner_temp)
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_WORKSPACE", dir.path());
        if let Some(env) = step.get("env").and_then(Value::as_mapping) {
            for (key, value) in env {
                command.env(text(key), expression(text(value), &inputs, &outputs));
            }
        }
        let out = command.output().unwrap();
        log.push_str(&format!(
            "== {name}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        let written = fs::read_to_string(&output_file).unwrap();
        let step_outputs = written
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some(id) = step.get("id") {
            outputs.insert(text(id).to_owned(), step_outputs);
        }
        last_step = name;
        status = out.status.code().unwrap();
        if status != 0 {
            break;
        }
    }
    ActionRun {
        dir,
        last_step,
        status,
        outputs,
        log,
    }
}

#[test]
fn action_structure() {
    let action = load(ACTION);
    assert_eq!(text(&action["runs"]["using"]), "composite");
    for input in [
        "image",
        "fail-on",
        "min-score",
        "drydock-version",
        "drydock-url",
        "drydock-sha256",
        "drydock-path",
        "drydock-binary",
        "sarif",
        "junit",
        "upload",
        "fail-open",
    ] {
        assert!(
            action["inputs"].get(input).is_some(),
            "the action has no input {input}"
        );
    }
    assert_eq!(action["inputs"]["image"]["required"], Value::Bool(true));
    assert_eq!(text(&action["inputs"]["fail-open"]["default"]), "false");
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let uploads: Vec<&Value> = steps.iter().filter(|s| s.get("uses").is_some()).collect();
    assert_eq!(uploads.len(), 1, "one `uses:` step, the upload");
    let upload = uploads[0];
    assert!(text(&upload["uses"]).starts_with("github/codeql-action/upload-sarif@"));
    assert_eq!(text(&upload["with"]["sarif_file"]), "${{ inputs.sarif }}");
    let condition = text(&upload["if"]);
    assert!(condition.contains("inputs.upload == 'true'"), "{condition}");
    // The scan runs before the upload and the verdict after it, so a failed gate still uploads.
    let position = |needle: &str| {
        steps
            .iter()
            .position(|s| s.get("run").is_some_and(|r| text(r).contains(needle)))
            .unwrap()
    };
    let upload_at = steps.iter().position(|s| s.get("uses").is_some()).unwrap();
    assert!(position("\"$DRYDOCK_BIN\" \"${args[@]}\"") < upload_at);
    assert!(position("EXIT_CODE") > upload_at);
    // The installer pins: an exact version with a checksum, or a checkout built --locked.
    let install = text(&steps[0]["run"]);
    assert!(install.contains("sha256sum --check"));
    assert!(install.contains("cargo install --locked --path"));
}

fn check_sarif(path: &Path) {
    let sarif: serde_json::Value =
        serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
            .unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["runs"][0]["results"].is_array());
}

fn check_junit(path: &Path) {
    let xml = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("<testsuites"), "{xml}");
    assert!(xml.contains("<testcase"), "{xml}");
}

fn check_codequality(path: &Path) -> usize {
    let issues: serde_json::Value =
        serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
            .unwrap();
    let issues = issues.as_array().unwrap();
    for issue in issues {
        let fingerprint = issue["fingerprint"].as_str().unwrap();
        assert_eq!(fingerprint.len(), 64, "{issue}");
        assert!(
            fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
            "{issue}"
        );
    }
    issues.len()
}

#[test]
fn action_passes_static_go() {
    let image = fixture("static-go/oci");
    let run = run_action(&[("image", &image)], &path_with_drydock());
    assert_eq!(run.status, 0, "{}", run.log);
    assert_eq!(run.last_step, "Verdict");
    assert_eq!(run.outputs["scan"]["exit-code"], "0");
    assert!(run.outputs["install"]["bin"].ends_with("/drydock"));
    check_sarif(&run.dir.path().join("drydock.sarif"));
    check_junit(&run.dir.path().join("drydock-junit.xml"));
}

#[test]
fn action_fails_glibc_on_musl_after_writing_the_reports() {
    let image = workspace()
        .join("testdata/images/glibc-on-musl.tar.gz")
        .display()
        .to_string();
    let run = run_action(
        &[
            ("image", &image),
            ("sarif", "out/report.sarif"),
            ("junit", "out/report.xml"),
        ],
        &path_with_drydock(),
    );
    assert_eq!(run.outputs["scan"]["exit-code"], "1", "{}", run.log);
    assert_eq!((run.last_step.as_str(), run.status), ("Verdict", 1));
    check_sarif(&run.dir.path().join("out/report.sarif"));
    check_junit(&run.dir.path().join("out/report.xml"));
}

#[test]
fn action_min_score_is_passed_on() {
    let glibc = workspace()
        .join("testdata/images/glibc-on-musl.tar.gz")
        .display()
        .to_string();
    // Score 49: passes with no gate at all, fails below a minimum score of 50.
    let run = run_action(
        &[("image", &glibc), ("fail-on", "none")],
        &path_with_drydock(),
    );
    assert_eq!(run.status, 0, "{}", run.log);
    let run = run_action(
        &[("image", &glibc), ("fail-on", "none"), ("min-score", "50")],
        &path_with_drydock(),
    );
    assert_eq!(run.outputs["scan"]["exit-code"], "1", "{}", run.log);
    assert_eq!(run.status, 1);
}

#[test]
fn action_no_verdict_fails_closed_unless_fail_open() {
    let image = missing_image();
    let run = run_action(&[("image", &image)], &path_with_drydock());
    assert_eq!(run.outputs["scan"]["exit-code"], "3", "{}", run.log);
    assert_eq!((run.last_step.as_str(), run.status), ("Verdict", 3));
    let run = run_action(
        &[("image", &image), ("fail-open", "true")],
        &path_with_drydock(),
    );
    assert_eq!(run.status, 0, "{}", run.log);
    assert!(
        run.log
            .contains("::warning::drydock gave no verdict (exit 3)")
    );
}

#[test]
fn action_installs_an_exact_release_by_checksum() {
    let bytes = fs::read(bin()).unwrap();
    let sha256 = hex(&Sha256::digest(&bytes));
    let url = format!("file://{}", bin().display());
    let version = env!("CARGO_PKG_VERSION");
    let image = fixture("static-go/oci");
    // No drydock on PATH: the downloaded one must be the one that runs.
    let run = run_action(
        &[
            ("image", &image),
            ("drydock-version", version),
            ("drydock-url", &url),
            ("drydock-sha256", &sha256),
        ],
        &system_path(),
    );
    assert_eq!(run.status, 0, "{}", run.log);
    let installed = &run.outputs["install"]["bin"];
    assert!(installed.starts_with(&run.dir.path().display().to_string()));
    let wrong = hex(&Sha256::digest(b"not drydock"));
    let run = run_action(
        &[
            ("image", &image),
            ("drydock-version", version),
            ("drydock-url", &url),
            ("drydock-sha256", &wrong),
        ],
        &system_path(),
    );
    assert_eq!(
        (run.last_step.as_str(), run.status),
        ("Install drydock", 2),
        "{}",
        run.log
    );
    assert!(run.log.contains("does not match"));
    let run = run_action(
        &[
            ("image", &image),
            ("drydock-version", "9.9.9"),
            ("drydock-url", &url),
            ("drydock-sha256", &sha256),
        ],
        &system_path(),
    );
    assert_eq!(run.status, 2, "{}", run.log);
    // Nothing given and nothing on PATH: refused, not guessed.
    let run = run_action(&[("image", &image)], &system_path());
    assert_eq!((run.last_step.as_str(), run.status), ("Install drydock", 2));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The GitLab CI template.

#[test]
fn gitlab_structure() {
    let ci = load(GITLAB);
    let job = &ci[".drydock"];
    let artifacts = &job["artifacts"];
    assert_eq!(text(&artifacts["when"]), "always");
    assert_eq!(text(&artifacts["reports"]["junit"]), "drydock-junit.xml");
    assert_eq!(
        text(&artifacts["reports"]["codequality"]),
        "gl-code-quality-report.json"
    );
    let exit_codes: Vec<u64> = job["allow_failure"]["exit_codes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(exit_codes, [2, 3, 4]);
    assert_eq!(text(&job["variables"]["DRYDOCK_FAIL_OPEN"]), "false");
    let example = &ci["drydock"];
    assert_eq!(text(&example["extends"]), ".drydock");
    assert!(text(&example["variables"]["DRYDOCK_IMAGE"]).contains("$CI_COMMIT_SHA"));
}

/// Runs the hidden job's `before_script` and `script` in one shell, as GitLab's runner does,
/// and returns the job's exit status and its directory.
fn run_gitlab(variables: &[(&str, &str)], path: &str) -> (i32, tempfile::TempDir, String) {
    let ci = load(GITLAB);
    let job = &ci[".drydock"];
    let mut lines = Vec::new();
    for key in ["before_script", "script"] {
        for line in job[key].as_sequence().unwrap() {
            lines.push(text(line).to_owned());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(lines.join("\n"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("CI_PROJECT_DIR", dir.path());
    for (key, value) in job["variables"].as_mapping().unwrap() {
        command.env(text(key), text(value));
    }
    for (key, value) in variables {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), dir, log)
}

fn check_gitlab_reports(dir: &Path) -> usize {
    check_junit(&dir.join("drydock-junit.xml"));
    check_sarif(&dir.join("drydock.sarif"));
    check_codequality(&dir.join("gl-code-quality-report.json"))
}

#[test]
fn gitlab_passes_static_go() {
    let image = fixture("static-go/oci");
    let (status, dir, log) = run_gitlab(&[("DRYDOCK_IMAGE", &image)], &path_with_drydock());
    assert_eq!(status, 0, "{log}");
    check_gitlab_reports(dir.path());
}

#[test]
fn gitlab_fails_glibc_on_musl_with_the_reports() {
    let image = workspace()
        .join("testdata/images/glibc-on-musl.tar.gz")
        .display()
        .to_string();
    let (status, dir, log) = run_gitlab(&[("DRYDOCK_IMAGE", &image)], &path_with_drydock());
    assert_eq!(status, 1, "{log}");
    assert!(check_gitlab_reports(dir.path()) > 0);
    let issues: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("gl-code-quality-report.json")).unwrap())
            .unwrap();
    assert!(
        issues
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["check_name"] == "elf.interpreter-missing" && i["severity"] == "blocker")
    );
    // A stricter gate through the variables.
    let (status, _, log) = run_gitlab(
        &[("DRYDOCK_IMAGE", &image), ("DRYDOCK_FAIL_ON", "none")],
        &path_with_drydock(),
    );
    assert_eq!(status, 0, "{log}");
    let (status, _, log) = run_gitlab(
        &[
            ("DRYDOCK_IMAGE", &image),
            ("DRYDOCK_FAIL_ON", "none"),
            ("DRYDOCK_MIN_SCORE", "90"),
        ],
        &path_with_drydock(),
    );
    assert_eq!(status, 1, "{log}");
}

#[test]
fn gitlab_no_verdict_is_allowed_to_fail_only_when_asked() {
    let ci = load(GITLAB);
    let allowed: Vec<i32> = ci[".drydock"]["allow_failure"]["exit_codes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| i32::try_from(c.as_i64().unwrap()).unwrap())
        .collect();
    let image = missing_image();
    let (status, _, log) = run_gitlab(&[("DRYDOCK_IMAGE", &image)], &path_with_drydock());
    assert_eq!(status, 1, "{log}");
    assert!(!allowed.contains(&status));
    assert!(log.contains("failing closed"), "{log}");
    let (status, _, log) = run_gitlab(
        &[("DRYDOCK_IMAGE", &image), ("DRYDOCK_FAIL_OPEN", "true")],
        &path_with_drydock(),
    );
    assert_eq!(status, 3, "{log}");
    assert!(allowed.contains(&status));
}

#[test]
fn gitlab_installs_an_exact_release_by_checksum() {
    let bytes = fs::read(bin()).unwrap();
    let sha256 = hex(&Sha256::digest(&bytes));
    let url = format!("file://{}", bin().display());
    let image = fixture("static-go/oci");
    let release = [
        ("DRYDOCK_IMAGE", image.as_str()),
        ("DRYDOCK_VERSION", env!("CARGO_PKG_VERSION")),
        ("DRYDOCK_URL", url.as_str()),
        ("DRYDOCK_SHA256", sha256.as_str()),
    ];
    let (status, dir, log) = run_gitlab(&release, &system_path());
    assert_eq!(status, 0, "{log}");
    assert!(dir.path().join(".drydock/bin/drydock").exists());
    let mut wrong = release;
    let other = hex(&Sha256::digest(b"not drydock"));
    wrong[3] = ("DRYDOCK_SHA256", other.as_str());
    let (status, _, log) = run_gitlab(&wrong, &system_path());
    assert_eq!(status, 2, "{log}");
    assert!(log.contains("does not match"), "{log}");
}
