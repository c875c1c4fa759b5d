//! The runtime-environment checks: certificates, time zones, /tmp, users, the command.

use crate::support::{fixture, scan_json};

/// Findings above info, as (id, severity).
fn significant(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn one(id: &str, severity: &str) -> Vec<(String, String)> {
    vec![(id.to_owned(), severity.to_owned())]
}

#[test]
fn every_runtime_check_fires_on_its_fixture_and_not_on_its_twin() {
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("go-no-certs", one("certs.missing", "high")),
        ("static-go", vec![]),
        ("tz-missing", one("tz.zoneinfo-missing", "medium")),
        ("tz-present", vec![]),
        ("tz-embedded", vec![]),
        (
            "tz-localtime-dangling",
            vec![
                ("tz.zoneinfo-missing".into(), "medium".into()),
                ("tz.localtime-dangling".into(), "medium".into()),
            ],
        ),
        ("user-unknown", one("user.unknown", "critical")),
        ("user-named", vec![]),
        ("entrypoint-missing", one("entrypoint.missing", "critical")),
        (
            "script-bash",
            one("entrypoint.interpreter-missing", "critical"),
        ),
        // busybox's sh execs a single command: the program is PID 1 (runtime_faithful runs it).
        ("shell-form", vec![]),
        ("shell-form-exec", vec![]),
        ("script-sh", vec![]),
        (
            "script-env-bash",
            one("entrypoint.interpreter-missing", "critical"),
        ),
        ("user-numeric", vec![]),
        ("certs-empty", one("certs.invalid", "high")),
        // Go still reads the bundle in /etc/ssl/certs as a root directory's file.
        ("certs-env-dangling", one("certs.invalid", "low")),
        (
            "scratch",
            vec![
                ("certs.missing".into(), "high".into()),
                ("fs.tmp-missing".into(), "medium".into()),
                ("user.root".into(), "medium".into()),
            ],
        ),
    ];
    for (name, expected) in cases {
        let (code, report) = scan_json(&[&fixture(&format!("{name}/oci"))]);
        let mut found = significant(&report);
        found.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(found, expected, "{name}");
        assert_eq!(
            code,
            i32::from(expected.iter().any(|(_, s)| s == "critical")),
            "{name}"
        );
    }
}

#[test]
fn messages_name_the_program_and_the_fix() {
    let (_, report) = scan_json(&[&fixture("go-no-certs/oci")]);
    let finding = &report["findings"][0];
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .starts_with("/app/server makes TLS connections (crypto/tls)"),
        "{finding}"
    );
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains("ca-certificates")
    );

    let (_, report) = scan_json(&[&fixture("static-go/oci")]);
    let info = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "certs.invalid")
        .unwrap();
    assert!(
        info["message"]
            .as_str()
            .unwrap()
            .contains("CA certificates"),
        "{info}"
    );
    assert!(
        info["message"]
            .as_str()
            .unwrap()
            .contains("earliest expires on 20"),
        "{info}"
    );

    let shell_form = crate::support::group_fixtures("runtime-faithful").join("sh-dash/oci");
    let (_, report) = scan_json(&[&format!("oci:{}:single", shell_form.display())]);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "entrypoint.shell-form")
        .unwrap();
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains(r#"["/app/server", "--port", "8080"]"#),
        "{finding}"
    );

    let (_, report) = scan_json(&[&fixture("tz-missing/oci")]);
    let finding = &report["findings"][0];
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("unknown time zone Asia/Shanghai"),
        "{finding}"
    );
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains("time/tzdata")
    );

    let (_, report) = scan_json(&[&fixture("script-env-bash/oci")]);
    let message = report["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("env: 'bash': No such file or directory"),
        "{message}"
    );

    let (_, report) = scan_json(&[&fixture("user-numeric/oci")]);
    let info = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "user.unknown")
        .unwrap();
    assert_eq!(
        info["severity"], "info",
        "a numeric user without an entry still starts"
    );

    let (_, report) = scan_json(&[&fixture("user-unknown/oci")]);
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unable to find user svc")
    );
}

#[test]
fn a_go_build_before_1_25_without_gomaxprocs() {
    // The fixtures' Go (Debian's) predates 1.25; only the image that does not set GOMAXPROCS fires.
    let (_, report) = scan_json(&[&fixture("go-no-gomaxprocs/oci")]);
    assert_eq!(significant(&report), one("go.gomaxprocs", "low"));
    let message = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "go.gomaxprocs")
        .unwrap()["message"]
        .clone();
    assert!(message.as_str().unwrap().contains("go1."), "{message}");
    let (_, report) = scan_json(&[&fixture("static-go/oci")]);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["id"] != "go.gomaxprocs")
    );
}
