//! Every local source format, made by the real tool that produces it, gives the same image.

use std::io::Write;
use std::process::Stdio;

use crate::support::{
    RawLayer, TarEntry, drydock, drydock_tree, fixture, gzip, run, scan_json, sha256, stderr,
    stdout, tar_bytes, write_layout,
};

fn identity(report: &serde_json::Value) -> (String, Vec<String>) {
    let image = &report["image"];
    let diff_ids = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap().to_owned())
        .collect();
    (
        image["config_digest"].as_str().unwrap().to_owned(),
        diff_ids,
    )
}

#[test]
fn glibc_on_musl_reads_the_same_from_every_form() {
    let forms = [
        format!("docker-archive:{}", fixture("glibc-on-musl/docker.tar")),
        fixture("glibc-on-musl/docker.tar"),
        fixture("glibc-on-musl/docker.tar.gz"),
        fixture("glibc-on-musl/oci"),
        format!("oci:{}:latest", fixture("glibc-on-musl/oci")),
        fixture("glibc-on-musl/oci.tar"),
        format!("oci-archive:{}", fixture("glibc-on-musl/oci.tar")),
    ];
    let reference = drydock_tree(&[&forms[0]]);
    let (_, first) = scan_json(&[&forms[0]]);
    for form in &forms[1..] {
        assert_eq!(drydock_tree(&[form]), reference, "tree of {form}");
        let (code, report) = scan_json(&[form]);
        assert_eq!(code, 1, "{form}");
        assert_eq!(identity(&report), identity(&first), "{form}");
        assert_eq!(report["findings"], first["findings"], "{form}");
    }
}

#[test]
fn static_go_reads_the_same_from_every_form() {
    let forms = [
        fixture("static-go/oci"),
        fixture("static-go/oci.tar"),
        fixture("static-go/zstd"),
        fixture("static-go/docker.tar"),
        fixture("static-go/docker.tar.gz"),
        fixture("static-go/docker25.tar"),
    ];
    let reference = drydock_tree(&[&forms[0]]);
    assert!(reference.contains_key("/app/server"));
    for form in &forms[1..] {
        assert_eq!(drydock_tree(&[form]), reference, "tree of {form}");
    }
}

#[test]
fn report_records_what_each_format_knows() {
    let (_, oci) = scan_json(&[&fixture("static-go/oci")]);
    assert_eq!(
        oci["image"]["source"].as_str().unwrap(),
        format!("oci:{}", fixture("static-go/oci"))
    );
    assert!(
        oci["image"]["manifest_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let layers = oci["image"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert!(
        layers[1]["created_by"]
            .as_str()
            .unwrap()
            .contains("/app/server")
    );
    assert!(layers[1]["digest"].as_str().unwrap().starts_with("sha256:"));

    // The Docker 25+ archive is an OCI layout too: its manifest digest is found.
    let (_, docker25) = scan_json(&[&fixture("static-go/docker25.tar")]);
    assert_eq!(
        docker25["image"]["manifest_digest"],
        oci["image"]["manifest_digest"]
    );
    assert_eq!(
        docker25["image"]["source"].as_str().unwrap(),
        format!("docker-archive:{}", fixture("static-go/docker25.tar"))
    );

    // A legacy archive has no manifest, only the config.
    let (_, legacy) = scan_json(&[&fixture("static-go/docker.tar")]);
    assert!(legacy["image"]["manifest_digest"].is_null());
    assert_eq!(
        legacy["image"]["config_digest"],
        oci["image"]["config_digest"]
    );
    assert_eq!(
        legacy["image"]["reference"].as_str().unwrap(),
        "docker.io/drydock-fixtures/static-go:latest"
    );
}

#[test]
fn zstd_layers_are_read() {
    let (code, report) = scan_json(&[&fixture("static-go/zstd")]);
    assert_eq!(code, 0);
    let blob = report["image"]["layers"][1]["digest"].as_str().unwrap();
    let bytes = std::fs::read(format!(
        "{}/blobs/sha256/{}",
        fixture("static-go/zstd"),
        &blob[7..]
    ))
    .unwrap();
    assert_eq!(
        &bytes[..4],
        &[0x28, 0xb5, 0x2f, 0xfd],
        "the fixture's layers really are zstd"
    );
}

#[test]
fn an_archive_on_standard_input_is_read_in_one_pass() {
    let bytes = std::fs::read(fixture("glibc-on-musl/docker.tar.gz")).unwrap();
    let mut child = drydock()
        .args(["scan", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["findings"][0]["path"], "/app/hello");
}

#[test]
fn an_image_is_chosen_by_name_among_several() {
    let layout = fixture("multi/oci");
    let output = run(&["scan", &layout]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("musl") && message.contains("go") && message.contains("--image"),
        "{message}"
    );

    let (_, musl) = scan_json(&[&layout, "--image", "musl"]);
    assert_eq!(musl["image"]["reference"], "musl");
    let (_, go) = scan_json(&[&format!("oci:{layout}:go")]);
    assert!(drydock_tree(&[&format!("oci:{layout}:go")]).contains_key("/app/server"));
    assert_ne!(musl["image"]["config_digest"], go["image"]["config_digest"]);

    let archive = fixture("multi/docker25.tar");
    let output = run(&["scan", &archive]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("drydock-fixtures/static-go:latest"),
        "{}",
        stderr(&output)
    );
    // Short names are normalised as docker does: `name` means `docker.io/name:latest`.
    let (_, by_name) = scan_json(&[&archive, "--image", "drydock-fixtures/static-go"]);
    assert_eq!(
        by_name["image"]["config_digest"],
        go["image"]["config_digest"]
    );
    let output = run(&["scan", &archive, "--image", "nope:1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no image `nope:1`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_platform_is_chosen_from_an_index() {
    let layout = fixture("platforms/oci");
    let (_, arm) = scan_json(&[&layout, "--platform", "linux/arm64"]);
    assert_eq!(arm["image"]["platform"], "linux/arm64");
    let (_, amd) = scan_json(&[&layout, "--platform", "linux/amd64"]);
    assert_eq!(amd["image"]["platform"], "linux/amd64");
    assert_ne!(
        arm["image"]["manifest_digest"],
        amd["image"]["manifest_digest"]
    );
    if std::env::consts::ARCH == "x86_64" {
        let (_, default) = scan_json(&[&layout]);
        assert_eq!(
            default["image"]["platform"], "linux/amd64",
            "the host's platform by default"
        );
    }
    let output = run(&["scan", &layout, "--platform", "linux/s390x"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("linux/arm64") && message.contains("linux/amd64"),
        "{message}"
    );
    // A single-platform image asked for another platform is an error, not a silent scan.
    let output = run(&[
        "scan",
        &fixture("static-go/oci"),
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
}

#[test]
fn docker_media_types_concatenated_gzip_and_absent_foreign_layers() {
    let scratch = tempfile::tempdir().unwrap();
    // A Docker schema 2 layer type.
    let mut base = RawLayer::gzip(&[TarEntry::Dir("app/"), TarEntry::File("app/a", b"a")]);
    base.media_type = "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
    // One tar split over two gzip members, as pigz and eStargz write layers.
    let tar = tar_bytes(&[TarEntry::File("app/b", b"b")]);
    let (head, tail) = tar.split_at(512);
    let mut blob = gzip(head);
    blob.extend(gzip(tail));
    let members = RawLayer {
        diff_id: sha256(&tar),
        blob,
        claimed_digest: None,
        claimed_size: None,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        absent: false,
    };
    // A Windows-style foreign layer whose blob is not shipped: noted, not fatal.
    let mut foreign = RawLayer::gzip(&[TarEntry::File("Files/x", b"x")]);
    foreign.media_type = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".into();
    foreign.absent = true;
    let layout = write_layout(scratch.path(), &[base, members, foreign], &["/app/a"]);
    let (code, report) = scan_json(&[layout.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].as_str().unwrap().contains("foreign layer"),
        "{notes:?}"
    );
    let tree = drydock_tree(&[layout.to_str().unwrap()]);
    assert!(tree.contains_key("/app/a") && tree.contains_key("/app/b"));
    assert!(!tree.contains_key("/Files"));
}

/// GNU tar's sparse files in every PAX format it writes (0.0, 0.1, 1.0): the tree has the real
/// name and size, as Go's archive/tar (so umoci, the oracle) gives them. The old GNU `S`
/// header is refused, as docker, containerd and umoci refuse it.
#[test]
fn sparse_files_from_gnu_tar_read_as_go_reads_them() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    let sparse = root.join("var/lib/disk.img");
    {
        use std::io::{Seek, SeekFrom};
        let mut file = std::fs::File::create(&sparse).unwrap();
        file.seek(SeekFrom::Start(1 << 20)).unwrap();
        file.write_all(b"data in the middle").unwrap();
        file.set_len(4 << 20).unwrap();
    }
    for (name, flags) in [
        ("gnu", &["--format=gnu"][..]),
        ("pax-0.0", &["--format=pax", "--sparse-version=0.0"][..]),
        ("pax-0.1", &["--format=pax", "--sparse-version=0.1"][..]),
        ("pax-1.0", &["--format=pax", "--sparse-version=1.0"][..]),
    ] {
        let layer_tar = scratch.path().join(format!("{name}.tar"));
        let status = std::process::Command::new("tar")
            .args(["--sparse", "--owner=0", "--group=0", "--numeric-owner"])
            .args(flags)
            .arg("-cf")
            .arg(&layer_tar)
            .arg("-C")
            .arg(&root)
            .arg("var")
            .status()
            .unwrap();
        assert!(status.success(), "GNU tar {name}");
        let tar = std::fs::read(&layer_tar).unwrap();
        assert!(tar.len() < 1 << 20, "{name}: the holes are not stored");
        let layer = RawLayer {
            diff_id: sha256(&tar),
            blob: gzip(&tar),
            claimed_digest: None,
            claimed_size: None,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            absent: false,
        };
        let dir = scratch.path().join(format!("{name}-layout"));
        let layout = write_layout(&dir, &[layer], &["/bin/true"]);
        let layout = layout.to_str().unwrap();
        if name == "gnu" {
            let output = run(&["scan", layout]);
            let message = stderr(&output);
            assert_eq!(output.status.code(), Some(4), "{message}");
            assert!(message.contains("old GNU sparse entry"), "{message}");
            assert!(message.contains("/var/lib/disk.img"), "{message}");
            let umoci = std::process::Command::new("umoci")
                .args(["unpack", "--image", &format!("{layout}:latest")])
                .arg(scratch.path().join("gnu-bundle"))
                .output()
                .unwrap();
            assert!(!umoci.status.success(), "umoci refuses it too");
            continue;
        }
        let ours = drydock_tree(&[layout]);
        let file = &ours["/var/lib/disk.img"];
        assert_eq!((file.kind.as_str(), file.size), ("file", 4 << 20), "{name}");
        assert!(
            !ours.keys().any(|p| p.contains("GNUSparseFile")),
            "{name}: no invented path: {:?}",
            ours.keys().collect::<Vec<_>>()
        );
        crate::support::assert_same(
            &ours,
            &crate::support::umoci_tree(layout, "latest"),
            &format!("sparse {name} against umoci"),
        );
    }
}
