//! `elf.interpreter-missing`, end to end.

use crate::support::{RawLayer, TarEntry, fixture, run, scan_json, stdout, write_layout};

#[test]
fn a_glibc_binary_in_a_musl_image_fails_the_gate() {
    let (code, report) = scan_json(&[&fixture("glibc-on-musl/oci")]);
    assert_eq!(code, 1);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["grade"], "F");
    assert_eq!(report["passed"], false);
    let findings: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("elf."))
        .collect();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = findings[0];
    assert_eq!(finding["id"], "elf.interpreter-missing");
    assert_eq!(finding["severity"], "critical");
    assert_eq!(finding["path"], "/app/hello");
    assert_eq!(finding["layer"], 1);
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains("exec /app/hello: no such file or directory"),
        "{message}"
    );
    assert!(message.contains("/lib64/ld-linux-x86-64.so.2"), "{message}");
    assert!(
        message.contains("glibc") && message.contains("musl"),
        "{message}"
    );
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains("CGO_ENABLED=0")
    );
    assert!(report["score"].as_u64().unwrap() < 50);
}

#[test]
fn the_same_program_built_for_musl_passes() {
    let (code, report) = scan_json(&[&fixture("musl-hello/oci")]);
    assert_eq!(code, 0);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["id"].as_str().unwrap().starts_with("elf."))
    );
}

#[test]
fn an_interpreter_reached_through_merged_usr_and_absolute_symlinks_is_found() {
    // /lib64 -> usr/lib64, and usr/lib64/ld-linux-x86-64.so.2 is an absolute link into
    // /usr/lib/x86_64-linux-gnu: both must resolve inside the image.
    let (code, report) = scan_json(&[&fixture("layers-edge/oci")]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["id"] != "elf.interpreter-missing")
    );
}

#[test]
fn a_healthy_static_go_image_has_no_finding_above_info() {
    let (code, report) = scan_json(&[&fixture("static-go/oci")]);
    assert_eq!(code, 0);
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["severity"] == "info"),
        "{findings:?}"
    );
    assert!(report["score"].as_u64().unwrap() >= 90);
}

#[test]
fn a_dangling_interpreter_symlink_is_explained() {
    let scratch = tempfile::tempdir().unwrap();
    let glibc_binary = std::fs::read("/bin/true").unwrap();
    let layer = RawLayer::gzip(&[
        TarEntry::Dir("lib64/"),
        TarEntry::Symlink(
            "lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ),
        TarEntry::File("bin/true", &glibc_binary),
    ]);
    let layout = write_layout(scratch.path(), &[layer], &["/bin/true"]);
    let (code, report) = scan_json(&[layout.to_str().unwrap()]);
    assert_eq!(code, 1);
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("is a symlink to /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        "{message}"
    );
    assert!(message.contains("no C library"), "{message}");
}

#[test]
fn the_human_report_says_what_breaks_and_how_to_fix_it() {
    let output = run(&[
        "scan",
        "--color",
        "never",
        &fixture("glibc-on-musl/docker.tar"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("CRITICAL (1)") && text.contains("MEDIUM (1)"),
        "{text}"
    );
    assert!(
        text.contains("elf.interpreter-missing /app/hello"),
        "{text}"
    );
    assert!(
        text.contains("layer 1: COPY --from=build /out/hello /app/hello"),
        "{text}"
    );
    assert!(text.contains("fix: "), "{text}");
    assert!(text.contains("gate FAILED"), "{text}");
    assert!(
        text.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns:\n{text}"
    );
    assert!(!text.contains('\x1b'), "no colour when asked for none");
}

#[test]
fn the_report_says_what_each_finding_cost_and_where_it_is_explained() {
    let (_, report) = scan_json(&[&fixture("glibc-on-musl/oci")]);
    assert_eq!(report["runnable"], false);
    let findings = report["findings"].as_array().unwrap();
    let critical = findings
        .iter()
        .find(|f| f["id"] == "elf.interpreter-missing")
        .unwrap();
    assert_eq!(critical["cost"], 40);
    assert_eq!(critical["docs"], "docs/checks/elf.interpreter-missing.md");
    let (_, healthy) = scan_json(&[&fixture("static-go/oci")]);
    assert_eq!(healthy["runnable"], true);
}

#[test]
fn a_minimum_score_fails_the_gate() {
    let image = fixture("go-unstripped/oci");
    let (code, report) = scan_json(&[&image, "--min-score", "99"]);
    assert_eq!(
        (code, report["passed"].as_bool()),
        (1, Some(false)),
        "score {}",
        report["score"]
    );
    let (code, _) = scan_json(&[&image, "--min-score", "90"]);
    assert_eq!(code, 0);
}

#[test]
fn checks_and_explain_document_every_check() {
    let output = crate::support::run(&["checks"]);
    let listing = crate::support::stdout(&output);
    assert!(listing.lines().count() >= 16, "{listing}");
    assert!(
        listing.contains("elf.library-missing") && listing.contains("critical"),
        "{listing}"
    );
    let output = crate::support::run(&["explain", "tz.zoneinfo-missing"]);
    assert!(crate::support::stdout(&output).starts_with("# tz.zoneinfo-missing"));
    let output = crate::support::run(&["explain", "nope"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn fail_on_none_passes_the_gate_but_keeps_the_findings() {
    let (code, report) = scan_json(&[&fixture("glibc-on-musl/oci"), "--fail-on", "none"]);
    assert_eq!(code, 0);
    assert_eq!(report["passed"], true);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "elf.interpreter-missing")
    );
}
