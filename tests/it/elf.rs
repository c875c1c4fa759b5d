//! The ELF checks, end to end, and the loader emulation against two oracles: `lddtree` (where
//! it is right) and the real glibc loader, run in a chroot of the unpacked image.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::support::{fixture, run, scan_json, stdout};

/// The ELF findings of a report (other checks are tested elsewhere).
fn ids(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("elf."))
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn message_of(report: &serde_json::Value, id: &str) -> String {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_check_fires_on_its_fixture_and_not_on_its_twin() {
    let critical = |id: &str| vec![(id.to_owned(), "critical".to_owned())];
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("lib-missing/oci", critical("elf.library-missing")),
        ("lib-chain/oci", critical("elf.library-missing")),
        (
            "lib-missing-unreached/oci",
            vec![("elf.library-missing".into(), "high".into())],
        ),
        ("lib-not-on-path/oci", critical("elf.library-missing")),
        ("lib-stale-cache/oci", critical("elf.library-missing")),
        ("lib-runpath-indirect/oci", critical("elf.library-missing")),
        ("glibc-too-old/oci", critical("elf.symbol-version-missing")),
        ("cgo-on-musl/oci", critical("elf.interpreter-missing")),
        ("glibc-on-musl/oci", critical("elf.interpreter-missing")),
        ("wrong-arch/oci", critical("elf.wrong-architecture")),
        (
            "go-unstripped/oci",
            vec![("elf.not-stripped".into(), "low".into())],
        ),
        (
            "c-debug/oci",
            vec![("elf.not-stripped".into(), "low".into())],
        ),
        ("lib-present/oci", vec![]),
        ("rust-auditable/oci", vec![]),
        ("lib-runpath/oci", vec![]),
        ("lib-ld-library-path/oci", vec![]),
        ("musl-hello/oci", vec![]),
        ("static-go/oci", vec![]),
        ("layers-edge/oci", vec![]),
    ];
    for (image, expected) in cases {
        let (_, report) = scan_json(&[&fixture(image)]);
        assert_eq!(ids(&report), expected, "{image}");
    }
}

#[test]
fn messages_name_the_chain_the_versions_and_the_fix() {
    let (_, report) = scan_json(&[&fixture("lib-chain/oci")]);
    let message = message_of(&report, "elf.library-missing");
    assert!(
        message.contains(
            "/app/greeter needs /usr/lib/x86_64-linux-gnu/libgreet.so.1, which needs libvoice.so.1"
        ),
        "{message}"
    );
    assert!(
        message.contains("error while loading shared libraries: libvoice.so.1"),
        "{message}"
    );

    let (_, report) = scan_json(&[&fixture("lib-missing-unreached/oci")]);
    let message = message_of(&report, "elf.library-missing");
    assert!(
        message.contains("entrypoint (/bin/busybox) does not load it"),
        "{message}"
    );

    let (_, report) = scan_json(&[&fixture("glibc-too-old/oci")]);
    let message = message_of(&report, "elf.symbol-version-missing");
    assert!(
        message.contains("version `GLIBC_2.34' not found (required by /app/hello)"),
        "{message}"
    );
    assert!(
        message.contains("the newest it has is GLIBC_2.30"),
        "{message}"
    );

    let (_, report) = scan_json(&[&fixture("lib-stale-cache/oci")]);
    let finding = &report["findings"][0];
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("/opt/greet/lib/libgreet.so.1"),
        "{finding}"
    );
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains("ldconfig"),
        "{finding}"
    );

    let (_, report) = scan_json(&[&fixture("cgo-on-musl/oci")]);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "elf.interpreter-missing")
        .unwrap();
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("linked against glibc, but the image's C library is musl")
    );
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains("CGO_ENABLED=0")
    );

    let (_, report) = scan_json(&[&fixture("wrong-arch/oci")]);
    assert!(
        message_of(&report, "elf.wrong-architecture")
            .contains("64-bit x86_64 program, but the image is for linux/arm64")
    );

    let (_, report) = scan_json(&[&fixture("go-unstripped/oci")]);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "elf.not-stripped")
        .unwrap();
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("symbol table and debug information"),
        "{finding}"
    );
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains("-ldflags=\"-s -w\"")
    );
}

#[test]
fn a_debian_image_with_a_thousand_elf_files_has_no_false_positive() {
    let image = fixture("debian/oci");
    let output = run(&["tree", "--format", "json", &image]);
    let elf_files = stdout(&output)
        .lines()
        .filter(|l| l.contains("\"type\":\"elf\""))
        .count();
    assert!(elf_files > 1000, "the fixture holds {elf_files} ELF files");
    let (_, report) = scan_json(&[&image]);
    for (id, severity) in ids(&report) {
        // Info: a plugin whose library Debian leaves optional (iproute2's tc/q_atm.so needs
        // libatm1, a Recommends), which really cannot be loaded.
        assert!(
            (id == "elf.not-stripped" && severity == "low")
                || (id == "elf.library-missing" && severity == "info"),
            "unexpected {id} ({severity}) on Debian: {report}"
        );
    }
}

#[test]
fn inspect_shows_facts_and_the_loaders_choices() {
    let output = run(&[
        "inspect",
        "--format",
        "json",
        &fixture("lib-runpath/oci"),
        "/app/bin/greeter",
    ]);
    assert!(output.status.success());
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["elf"]["runpath"][0], "$ORIGIN/../lib");
    let libraries = document["libraries"].as_array().unwrap();
    let greet = libraries
        .iter()
        .find(|l| l["name"] == "libgreet.so.1")
        .unwrap();
    assert_eq!(greet["via"], "runpath");
    let voice = libraries
        .iter()
        .find(|l| l["name"] == "libvoice.so.1")
        .unwrap();
    assert!(
        voice["needed_by"]
            .as_str()
            .unwrap()
            .ends_with("libgreet.so.1")
    );

    let output = run(&[
        "inspect",
        "--format",
        "json",
        &fixture("static-go/oci"),
        "/app/server",
    ]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let go = &document["elf"]["go"];
    assert!(go["go_version"].as_str().unwrap().starts_with("go1."));
    assert!(
        go["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s[0] == "CGO_ENABLED" && s[1] == "0")
    );
    // Go records -ldflags only without -trimpath (go.dev/issue/52372).
    assert!(
        go["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s[0] == "-trimpath" && s[1] == "true")
    );
    assert_eq!(document["tls_client"], true, "net/http links crypto/tls");

    let output = run(&[
        "inspect",
        "--format",
        "json",
        &fixture("rust-auditable/oci"),
        "/app/rustapp",
    ]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = document["elf"]["rust_packages"]
        .as_array()
        .expect("the cargo-auditable dependency list");
    assert!(
        packages
            .iter()
            .any(|p| p["name"] == "rustapp" && p["version"] == "0.3.1"),
        "{packages:?}"
    );

    let output = run(&["inspect", &fixture("musl-hello/oci"), "/app/hello"]);
    assert!(
        stdout(&output).contains("libc.so => provided by musl libc"),
        "{}",
        stdout(&output)
    );
    let output = run(&["inspect", &fixture("musl-hello/oci"), "/nope"]);
    assert_eq!(output.status.code(), Some(2));
}

/// `lddtree -R ROOT PATH` as a map from needed name to the path it resolved to (or None).
fn lddtree(root: &Path, program: &str) -> BTreeMap<String, Option<String>> {
    let output = Command::new("/usr/bin/python3")
        .args(["/usr/bin/lddtree", "-a", "-R"])
        .arg(root)
        .arg(program)
        .output()
        .expect("lddtree (Debian package pax-utils, with python3-pyelftools)");
    let prefix = root.display().to_string();
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines().skip(1) {
        let Some((name, target)) = line.trim().split_once(" => ") else {
            continue;
        };
        let target =
            (target != "None").then(|| target.strip_prefix(&prefix).unwrap_or(target).to_owned());
        map.entry(name.to_owned()).or_insert(target);
    }
    map
}

/// `realpath` inside `root`: symlinks followed with absolute targets starting again at `root`.
fn canonical_in(root: &Path, file: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = file
        .split('/')
        .filter(|p| !p.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(parts.join("/")).join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    parts.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|p| !p.is_empty())
                        .rev()
                        .map(str::to_owned),
                );
            }
            Err(_) => {
                if !candidate.exists() {
                    return None;
                }
                parts.push(part);
            }
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// drydock's answer for the same program, with paths made canonical as lddtree prints them.
fn drydock_resolution(image: &str, program: &str, root: &Path) -> BTreeMap<String, Option<String>> {
    let output = run(&["inspect", "--format", "json", image, program]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut map = BTreeMap::new();
    for library in document["libraries"].as_array().unwrap() {
        let name = library["name"].as_str().unwrap().to_owned();
        let target = if library["provided_by"].is_string() {
            Some("(provided by musl libc)".to_owned())
        } else {
            library["path"].as_str().and_then(|p| canonical_in(root, p))
        };
        map.entry(name).or_insert(target);
    }
    map
}

fn canonical_lddtree(
    map: BTreeMap<String, Option<String>>,
    root: &Path,
) -> BTreeMap<String, Option<String>> {
    map.into_iter()
        .map(|(name, target)| (name, target.and_then(|t| canonical_in(root, &t))))
        .collect()
}

/// Runs the program in a chroot of the unpacked image with /proc mounted, and returns whether
/// the real loader started it, and what it printed.
fn real_loader(root: &Path, program: &str, env: &[(String, String)]) -> Option<(bool, String)> {
    let proc_dir = root.join("proc");
    std::fs::create_dir_all(&proc_dir).ok()?;
    let mounted = Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(&proc_dir)
        .status()
        .ok()?
        .success();
    if !mounted {
        return None;
    }
    let output = Command::new("chroot")
        .arg(root)
        .arg(program)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output();
    let _ = Command::new("umount").arg(&proc_dir).status();
    let output = output.ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // The fixtures' programs print and exit 0 when they start; 127 is chroot's "cannot run it".
    let loaded = output.status.success()
        && !stderr.contains("error while loading shared libraries")
        && !stderr.contains("version `");
    Some((loaded, stderr))
}

/// The `Env` of an OCI layout's image config, as the runtime would set it.
fn config_env(layout: &str) -> Vec<(String, String)> {
    let read = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(format!("{layout}/blobs/sha256/{hex}")).unwrap())
            .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{layout}/index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    config["config"]["Env"]
        .as_array()
        .map(|env| {
            env.iter()
                .filter_map(|e| {
                    e.as_str()?
                        .split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn library_resolution_agrees_with_lddtree_and_the_real_loader() {
    // Where lddtree is wrong, the case is named with the right answer (checked by running
    // the real loader below).
    let lddtree_is_wrong: &[(&str, &str, &str)] = &[
        (
            "lib-runpath",
            "libgreet.so.1",
            "lddtree does not expand $ORIGIN under --root; the loader finds /app/lib/libgreet.so.1",
        ),
        (
            "lib-runpath",
            "libvoice.so.1",
            "lddtree never reaches it, having missed libgreet.so.1",
        ),
        (
            "lib-runpath-indirect",
            "libgreet.so.1",
            "lddtree does not expand $ORIGIN under --root",
        ),
        (
            "lib-runpath-indirect",
            "libvoice.so.1",
            "lddtree never reaches it, having missed libgreet.so.1",
        ),
        (
            "lib-ld-library-path",
            "libgreet.so.1",
            "lddtree does not read LD_LIBRARY_PATH from the image config",
        ),
        (
            "lib-ld-library-path",
            "libvoice.so.1",
            "lddtree does not read LD_LIBRARY_PATH from the image config",
        ),
        (
            "lib-stale-cache",
            "libgreet.so.1",
            "lddtree reads /etc/ld.so.conf; the loader reads only /etc/ld.so.cache, which lacks it",
        ),
        (
            "musl-hello",
            "libc.so",
            "musl provides libc.so itself; lddtree looks for a file",
        ),
    ];
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let cases = [
        ("lib-missing", "/app/greeter", false),
        ("lib-chain", "/app/greeter", false),
        ("lib-present", "/app/greeter", true),
        ("lib-runpath", "/app/bin/greeter", true),
        ("lib-runpath-indirect", "/app/bin/greeter", false),
        ("lib-ld-library-path", "/app/greeter", true),
        ("lib-not-on-path", "/app/greeter", false),
        ("lib-stale-cache", "/app/greeter", false),
        ("glibc-too-old", "/app/hello", false),
        ("layers-edge", "/app/hello", true),
        ("musl-hello", "/app/hello", true),
        ("glibc-on-musl", "/app/hello", false),
        ("cgo-on-musl", "/app/server", false),
        ("rust-auditable", "/app/rustapp", true),
        ("c-debug", "/app/hello", true),
    ];
    for (name, program, starts) in cases {
        let layout = fixture(&format!("{name}/oci"));
        let unpacked = crate::support::umoci_unpack(&layout, "latest");
        let root = unpacked.path().join("bundle/rootfs");
        let ours = drydock_resolution(&layout, program, &root);
        let theirs = canonical_lddtree(lddtree(&root, program), &root);
        for (library, resolved) in &ours {
            let known = lddtree_is_wrong
                .iter()
                .find(|(f, l, _)| *f == name && l == library);
            match (theirs.get(library), known) {
                (Some(theirs), None) => assert_eq!(resolved, theirs, "{name}: {library}"),
                (_, Some((_, _, why))) => assert_ne!(
                    theirs.get(library),
                    Some(resolved),
                    "{name}: {library} is a known lddtree error ({why}), but they agree now"
                ),
                (None, None) if library.starts_with("ld-linux") => {}
                (None, None) => panic!("{name}: lddtree did not report {library}"),
            }
        }
        // The real loader, for the images whose program this machine can run.
        if is_root && let Some((loaded, stderr)) = real_loader(&root, program, &config_env(&layout))
        {
            assert_eq!(loaded, starts, "{name}: the real loader says {stderr}");
            let (_, report) = scan_json(&[&layout]);
            let broken = ids(&report)
                .iter()
                .any(|(_, severity)| severity == "critical");
            assert_eq!(
                !broken, starts,
                "{name}: drydock's verdict differs from the real loader's"
            );
            let loader_spoke = stderr.contains("error while loading shared libraries")
                || stderr.contains("Error loading shared library");
            if !loaded && loader_spoke {
                // `inspect` quotes what the loader prints for a library it cannot load.
                let output = run(&["inspect", "--format", "json", &layout, program]);
                let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
                let says: Vec<&str> = document["libraries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|l| l["loader_says"].as_str())
                    .collect();
                assert!(
                    says.iter().any(|words| stderr.contains(words)),
                    "{name}: the loader says {stderr}; inspect says {says:?}"
                );
            }
        }
    }
}
