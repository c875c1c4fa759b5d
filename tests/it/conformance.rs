//! The image conformance suite (issue #12): every image shape the fixtures of dive,
//! go-containerregistry, containers/image, stereoscope, trivy, regclient, skopeo and oras-go
//! hold, made by `cargo xtask fixtures --group conformance` (see xtask/src/conformance.rs).
//!
//! Each image is either read the way a container runtime reads it (docker, containerd,
//! podman: same config digest, diff ids, layers and file tree; `umoci unpack` and `dive --ci`
//! as oracles where they can read the image), or refused with the exit code of the contract
//! (2: the source does not hold the image asked for; 4: invalid) and a message naming the
//! document, the entry and the problem, never raw bytes. `expect.json` beside the fixtures
//! holds what the generator wrote into each image.

use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{assert_same, drydock_tree, group_fixtures, run, scan_json, umoci_tree};

fn path(relative: &str) -> String {
    let full = group_fixtures("conformance").join(relative);
    assert!(full.exists(), "fixture {} is missing", full.display());
    full.display().to_string()
}

/// `oci:DIR:REF` of a layout under the group.
fn oci(relative: &str, reference: &str) -> String {
    format!("oci:{}:{reference}", path(relative))
}

fn expect(name: &str) -> &'static Value {
    static EXPECT: OnceLock<Value> = OnceLock::new();
    let all = EXPECT.get_or_init(|| {
        serde_json::from_slice(&std::fs::read(path("expect.json")).unwrap()).unwrap()
    });
    let value = &all[name];
    assert!(value.is_object(), "no expectation {name}");
    value
}

fn diff_ids(report: &Value) -> Vec<String> {
    report["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Scans `args` and checks the image read is `name` of expect.json: config digest (docker's
/// image ID), diff ids and layer count, platform, and the manifest digest where the source
/// has one.
fn scans_as(args: &[&str], name: &str) -> Value {
    let (_, report) = scan_json(args);
    let want = expect(name);
    let image = &report["image"];
    assert_eq!(
        image["config_digest"], want["config_digest"],
        "{args:?}: config digest of {name}"
    );
    let want_ids: Vec<String> = want["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(diff_ids(&report), want_ids, "{args:?}: diff ids of {name}");
    assert_eq!(
        image["platform"], want["platform"],
        "{args:?}: platform of {name}"
    );
    // A docker archive before Docker 25 holds no manifest: the report says null there.
    if !want["manifest_digest"].is_null() && !image["manifest_digest"].is_null() {
        assert_eq!(
            image["manifest_digest"], want["manifest_digest"],
            "{args:?}: manifest digest of {name}"
        );
    }
    report
}

/// Runs a scan that must be refused; returns its exit code and error message, after checking
/// the message is one clean line: valid UTF-8, no control characters, no empty names.
fn refused(args: &[&str]) -> (i32, String) {
    let mut all = vec!["scan", "-q", "--format", "json"];
    all.extend_from_slice(args);
    let output = run(&all);
    let code = output.status.code().unwrap_or(-1);
    assert!(output.stdout.is_empty(), "{args:?}: a report was written");
    let message = String::from_utf8(output.stderr.clone())
        .unwrap_or_else(|_| panic!("{args:?}: the message is not UTF-8: {:?}", output.stderr));
    assert_clean(&message, args);
    (code, message)
}

fn assert_clean(message: &str, args: &[&str]) {
    let line = message.trim_end_matches('\n');
    assert!(!line.is_empty(), "{args:?}: no message");
    assert!(
        !line.chars().any(|c| c.is_control() || c == '\u{fffd}'),
        "{args:?}: raw bytes in the message: {line:?}"
    );
    for empty in ["``", ": :", "''", "\"\"", "()"] {
        assert!(
            !line.contains(empty),
            "{args:?}: an empty name ({empty}) in: {line}"
        );
    }
}

fn assert_refused(args: &[&str], code: i32, needles: &[&str]) -> String {
    let (actual, message) = refused(args);
    assert_eq!(actual, code, "{args:?}: exit code; message: {message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{args:?}: the message should name `{needle}`: {message}"
        );
    }
    message
}

fn config_of(name: &str) -> String {
    expect(name)["config_digest"].as_str().unwrap().to_owned()
}

fn manifest(name: &str) -> String {
    expect(name)["manifest_digest"].as_str().unwrap().to_owned()
}

// ---- docker archives (go-containerregistry tarball, containers/image, trivy, skopeo) ------

#[test]
fn every_form_of_one_image_reads_the_same() {
    // skopeo's docker-archive and oci-archive, `docker save | gzip/bzip2/xz/zstd` (docker load
    // reads all four), and the `./`-prefixed archives of oras-go and go-containerregistry.
    let forms = [
        path("base/oci"),
        oci("base/oci", "latest"),
        path("base/docker.tar"),
        format!("docker-archive:{}", path("base/docker.tar")),
        path("base/docker.tar.gz"),
        path("base/docker.tar.bz2"),
        path("base/docker.tar.xz"),
        path("base/docker.tar.zst"),
        path("base/docker-prefixed.tar"),
        path("base/oci.tar"),
        format!("oci-archive:{}:latest", path("base/oci.tar")),
        path("base/oci-prefixed.tar"),
    ];
    let oracle = umoci_tree(&path("base/oci"), "latest");
    assert!(oracle.contains_key("/bin/busybox"));
    for form in &forms {
        let report = scans_as(&[form], "base");
        assert_eq!(report["image"]["layers"].as_array().unwrap().len(), 2);
        if form.contains("oci") {
            assert_eq!(
                report["image"]["manifest_digest"],
                expect("base")["manifest_digest"],
                "{form}"
            );
        }
        assert_same(&drydock_tree(&[form]), &oracle, form);
    }
    // The fixtures are what they claim.
    for (file, magic) in [
        ("base/docker.tar.gz", &[0x1f, 0x8b][..]),
        ("base/docker.tar.bz2", b"BZh"),
        ("base/docker.tar.xz", &[0xfd, b'7', b'z', b'X', b'Z']),
        ("base/docker.tar.zst", &[0x28, 0xb5, 0x2f, 0xfd]),
    ] {
        assert!(
            std::fs::read(path(file)).unwrap().starts_with(magic),
            "{file}"
        );
    }
}

#[test]
fn config_history_with_empty_layer_entries_maps_to_the_layers() {
    // go-containerregistry's source_image_with_empty_layer_history: umoci config records
    // empty_layer entries; docker skips them when pairing history with layers.
    let config = path(&format!(
        "base/oci/blobs/sha256/{}",
        &config_of("base")["sha256:".len()..]
    ));
    let config: Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(
        history.iter().filter(|h| h["empty_layer"] == true).count(),
        2
    );
    let report = scans_as(&[&path("base/docker.tar")], "base");
    let layers = report["image"]["layers"].as_array().unwrap();
    assert_eq!(layers[0]["created_by"], "ADD busybox-static /");
    assert_eq!(layers[1]["created_by"], "COPY etc /etc");
}

#[test]
fn kaniko_archive_with_a_config_member_named_sha256() {
    // kaniko names the config member `sha256:<hex>` and its layers `<hex>.tar.gz` (gzip).
    scans_as(&[&path("docker/kaniko.tar")], "docker/kaniko");
}

#[test]
fn a_config_member_named_by_another_digest_is_read_by_its_content() {
    // docker load takes the image ID from the config's bytes, not from the member's name.
    for archive in [
        "docker/config-misnamed-hex.tar",
        "docker/config-misnamed-sha256.tar",
    ] {
        let report = scans_as(&[&path(archive)], "docker/config-misnamed");
        let named = crate::support::sha256(b"not the config");
        assert_ne!(
            report["image"]["config_digest"],
            named.as_str(),
            "{archive}"
        );
    }
}

#[test]
fn docker_25_archive_with_null_manifests_and_arm64() {
    // go-containerregistry's hello-world-v25: index.json says `"manifests": null`, manifest.json
    // points into blobs/sha256, RepoTags is null, the image is arm64. One image: scanned
    // whatever its platform, with a note; --platform must match it (docker run --platform
    // refuses an image of another platform).
    let archive = path("docker/docker25-null-manifests.tar");
    let report = scans_as(&[&archive], "docker/docker25-null-manifests");
    let notes = report["notes"].to_string();
    assert!(notes.contains("linux/arm64"), "{notes}");
    scans_as(
        &["--platform", "linux/arm64", &archive],
        "docker/docker25-null-manifests",
    );
    assert_refused(
        &["--platform", "linux/amd64", &archive],
        2,
        &["linux/arm64"],
    );
}

#[test]
fn a_layer_member_symlinked_to_another_layer_is_followed() {
    // go-containerregistry's test_link: the second layer.tar is a symlink to the first's; its
    // stream must be the target's bytes (the diff id checks it), not an empty file.
    let archive = path("docker/layer-symlink.tar");
    let report = scans_as(&[&archive], "docker/layer-symlink");
    assert_eq!(report["image"]["layers"].as_array().unwrap().len(), 2);
    scans_as(
        &["--image", "bazel/v1/tarball:test_image_3", &archive],
        "docker/layer-symlink",
    );
    assert!(drydock_tree(&[&archive]).contains_key("/etc/image-tag"));
}

#[test]
fn a_bundle_of_two_images_needs_a_name() {
    // go-containerregistry's test_bundle.tar: ambiguous without a tag; docker's short names
    // normalise (`test_image_1` is `docker.io/library/test_image_1:latest`).
    let archive = path("docker/bundle.tar");
    let message = assert_refused(
        &[&archive],
        2,
        &["test_image_1:latest", "test_image_2:latest"],
    );
    assert!(
        message.contains(&config_of("docker/bundle/test_image_1")[..19])
            && message.contains(&config_of("docker/bundle/test_image_2")[..19]),
        "each candidate's digest: {message}"
    );
    for name in [
        "test_image_1",
        "test_image_1:latest",
        "docker.io/library/test_image_1",
        "index.docker.io/library/test_image_1:latest",
    ] {
        scans_as(&["--image", name, &archive], "docker/bundle/test_image_1");
    }
    scans_as(
        &["--image", "test_image_2", &archive],
        "docker/bundle/test_image_2",
    );
    assert_refused(
        &["--image", "test_image_3", &archive],
        2,
        &["test_image_3", "test_image_1:latest", "test_image_2:latest"],
    );
}

#[test]
fn two_images_in_an_xz_compressed_archive() {
    // skopeo's docker-two-images.tar.xz.
    let archive = path("docker/two-images.tar.xz");
    assert_refused(
        &[&archive],
        2,
        &[
            "example.com/empty:latest",
            "example.com/empty/but:different",
        ],
    );
    scans_as(
        &["--image", "example.com/empty:latest", &archive],
        "docker/two-images/empty",
    );
    scans_as(
        &["--image", "example.com/empty/but:different", &archive],
        "docker/two-images/different",
    );
}

#[test]
fn one_image_under_several_tags() {
    // stereoscope's valid-multi-manifest-with-tags: one entry, two RepoTags.
    let archive = path("multi-tags/docker.tar");
    scans_as(&[&archive], "multi-tags");
    for tag in [
        "conformance/anchore-engine:latest",
        "conformance/anchore-engine:v0.8.2",
    ] {
        scans_as(&["--image", tag, &archive], "multi-tags");
    }
    let message = assert_refused(
        &["--image", "conformance/anchore-engine:v9", &archive],
        2,
        &["v0.8.2", "latest"],
    );
    assert_eq!(
        message.matches("v0.8.2").count(),
        1,
        "each tag once: {message}"
    );
}

#[test]
fn diff_ids_that_do_not_match_the_layers_are_invalid() {
    // go-containerregistry: TestManifestEmptyDiffIDs, TestLayerByDiffIDMoreDiffIDsThanLayers;
    // docker load refuses both ("layers length mismatch").
    assert_refused(&[&path("docker/diff-ids-empty.tar")], 4, &["diff_ids"]);
    assert_refused(
        &[&path("docker/diff-ids-more-than-layers.tar")],
        4,
        &["diff_id"],
    );
}

#[test]
fn a_symlink_cycle_between_members_is_invalid() {
    assert_refused(
        &[&path("docker/symlink-cycle.tar")],
        4,
        &["manifest.json", "link cycle"],
    );
}

#[test]
fn a_pre_1_10_archive_without_manifest_json_is_refused() {
    // go-containerregistry's no_manifest.tar: only `repositories` and `<id>/json`; ctr import
    // and podman load need manifest.json or index.json too.
    assert_refused(&[&path("docker/legacy-v1.tar")], 4, &["manifest.json"]);
}

#[test]
fn broken_manifest_json_documents_are_invalid() {
    // go-containerregistry's null_manifest.tar, stereoscope's empty-file and no-descriptors.json
    // and single-blank-manifest.json (which stereoscope accepts, but nothing can be loaded
    // from it: docker load fails on the empty Config).
    for (archive, needles) in [
        ("manifest-json/null.tar", &["manifest.json", "null"][..]),
        ("manifest-json/empty-list.tar", &["manifest.json"]),
        ("manifest-json/empty-file.tar", &["manifest.json"]),
        (
            "manifest-json/blank-entry.tar",
            &["manifest.json: entry 0", "Config", "empty"],
        ),
        ("manifest-json/prefixed-empty-list.tar", &["manifest.json"]),
    ] {
        let message = assert_refused(&[&path(archive)], 4, needles);
        assert!(
            !message.contains("neither"),
            "{archive}: manifest.json is there: {message}"
        );
    }
}

// ---- layers (dive, go-containerregistry mutate, regclient) --------------------------------

#[test]
fn dive_like_image_agrees_with_dive_and_umoci() {
    // dive's test-docker-image.tar: 14 layers copying, overwriting, moving, chmod-ing and
    // deleting files.
    let archive = path("dive-like/docker.tar");
    let report = scans_as(&[&archive], "dive-like");
    assert_eq!(report["image"]["layers"].as_array().unwrap().len(), 14);
    // `rm -rf /root/example/` is one whiteout of a directory holding 12810 bytes: dive 0.13.1
    // counts it 0 in the efficiency (as a file's whiteout), not the bytes it hides.
    let (efficiency, wasted, user) = crate::support::dive_ci(&archive);
    let image = &report["image"];
    assert_eq!(image["wasted_bytes"].as_u64().unwrap(), wasted);
    assert!(wasted > 6405 * 3, "the fixture wastes bytes: {wasted}");
    assert!(
        (image["efficiency"].as_f64().unwrap() * 100.0 - efficiency).abs() < 1e-3,
        "efficiency: dive {efficiency}, drydock {}",
        image["efficiency"]
    );
    assert!(
        (image["user_wasted_percent"].as_f64().unwrap() - user).abs() < 1e-3,
        "user wasted: dive {user}, drydock {}",
        image["user_wasted_percent"]
    );
    let ours = drydock_tree(&[&archive]);
    assert_same(
        &ours,
        &umoci_tree(&path("dive-like/oci"), "latest"),
        "dive-like",
    );
    assert!(!ours.contains_key("/root/example"));
    assert_eq!(ours["/root/saved.txt"].mode, 0o755);
}

#[test]
fn whiteouts_and_replaced_files_match_umoci() {
    // go-containerregistry's whiteout_image, whiteout_dir and overwritten_file.
    for name in ["whiteout-file", "whiteout-dir", "file-to-symlink"] {
        let layout = path(&format!("{name}/oci"));
        let ours = drydock_tree(&[&layout]);
        assert_same(&ours, &umoci_tree(&layout, "latest"), name);
        let archive = path(&format!("{name}/docker.tar"));
        scans_as(&[&archive], name);
        assert_eq!(drydock_tree(&[&archive]), ours, "{name}: docker.tar");
    }
    let tree = drydock_tree(&[&path("whiteout-file/oci")]);
    assert!(!tree.contains_key("/foo.txt") && tree.contains_key("/bar.txt"));
    let tree = drydock_tree(&[&path("whiteout-dir/oci")]);
    assert!(!tree.contains_key("/a/foo") && tree.contains_key("/a/baz"));
    let tree = drydock_tree(&[&path("file-to-symlink/oci")]);
    assert_eq!(tree["/foo.txt"].kind, "symlink");
    assert_eq!(tree["/foo.txt"].link.as_deref(), Some("bar.txt"));
}

#[test]
fn buildx_oci_tars_with_every_layer_compression() {
    // dive's test-oci-{uncompressed,gzip,zstd,estargz}-image.tar: dive loads them with
    // `--source docker-archive`, as docker load (25+) does.
    let gzip_tree = drydock_tree(&[&path("buildx/gzip.tar")]);
    for variant in ["uncompressed", "gzip", "zstd", "estargz"] {
        let name = format!("buildx/{variant}");
        let archive = path(&format!("buildx/{variant}.tar"));
        for form in [
            archive.clone(),
            format!("docker-archive:{archive}"),
            format!("oci-archive:{archive}"),
            path(&name),
        ] {
            scans_as(&[&form], &name);
        }
        let ours = drydock_tree(&[&archive]);
        if variant == "zstd" {
            // umoci 0.4.7 cannot read zstd: the same files as the gzip image.
            assert_eq!(ours, gzip_tree, "{variant}");
        } else {
            assert_same(&ours, &umoci_tree(&path(&name), "latest"), &name);
        }
    }
    // eStargz: several gzip members; the TOC is a file of the layer, as a runtime without the
    // stargz snapshotter unpacks it.
    let tree = drydock_tree(&[&path("buildx/estargz.tar")]);
    assert!(tree.contains_key("/stargz.index.json"));
    let index: Value =
        serde_json::from_slice(&std::fs::read(path("buildx/estargz/index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(path(&format!(
            "buildx/estargz/blobs/sha256/{}",
            &manifest[7..]
        )))
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = std::fs::read(path(&format!(
        "buildx/estargz/blobs/sha256/{}",
        &layer[7..]
    )))
    .unwrap();
    let members = blob.windows(3).filter(|w| w == &[0x1f, 0x8b, 8]).count();
    assert!(members >= 5, "gzip members: {members}");
}

#[test]
fn a_layer_tar_ending_without_padding_or_end_blocks_is_read() {
    // GNU tar and libarchive read to the end of the last entry's data: the stream is over.
    for tag in ["unpadded", "in-padding", "unpadded-gzip"] {
        let image = oci("layer-endings", tag);
        scans_as(&[&image], &format!("layer-endings:{tag}"));
        let tree = drydock_tree(&[&image]);
        assert_eq!(tree["/etc/motd"].size, 23, "{tag}");
        assert!(tree.contains_key("/etc/first"), "{tag}");
    }
}

#[test]
fn a_layer_tar_truncated_inside_data_or_a_header_is_invalid() {
    assert_refused(
        &[&oci("layer-endings", "truncated-data")],
        4,
        &["layer 1 (sha256:", "etc/motd"],
    );
    let message = assert_refused(
        &[&oci("layer-endings", "truncated-header")],
        4,
        &["layer 1 (sha256:", "header"],
    );
    assert!(
        message.contains("etc/first") || message.contains("etc/motd"),
        "the entry: {message}"
    );
}

// ---- OCI layouts (go-containerregistry layout, containers/image, stereoscope, trivy) ------

#[test]
fn the_only_image_of_a_layout_needs_no_name() {
    let layout = path("oci/one-image");
    scans_as(&[&layout], "oci/one-image");
    scans_as(&[&format!("oci:{layout}")], "oci/one-image");
    scans_as(&["--platform", "linux/amd64", &layout], "oci/one-image");
}

#[test]
fn a_non_standard_layer_media_type_is_read() {
    // go-containerregistry's test_index_media_type: `application/tar+gzip` is passed through.
    let report = scans_as(
        &[&path("oci/tar-gzip-media-type")],
        "oci/tar-gzip-media-type",
    );
    assert_eq!(report["image"]["layers"].as_array().unwrap().len(), 1);
}

#[test]
fn images_are_chosen_by_digest_even_through_an_index() {
    // go-containerregistry's test_index. Its Image(index digest) errors because that API asks
    // for an image; `docker pull name@sha256:<index>` resolves an index digest to the
    // platform's image, and drydock follows docker.
    let layout = path("oci/digests");
    let by = |digest: &str| format!("oci:{layout}:{digest}");
    // The index descriptor calls the docker schema 2 manifest an OCI manifest: containerd
    // parses both the same way.
    scans_as(
        &[&by(&manifest("oci/digests/docker-manifest"))],
        "oci/digests/docker-manifest",
    );
    scans_as(&[&by(&manifest("oci/digests/arm64"))], "oci/digests/arm64");
    scans_as(
        &[&by(&manifest("oci/digests/index"))],
        "oci/digests/docker-manifest",
    );
    scans_as(&[&by(&manifest("oci/digests/other"))], "oci/digests/other");
    let bogus = format!("sha256:{}", "de".repeat(32));
    assert_refused(&[&by(&bogus)], 2, &[&bogus]);
    assert_refused(
        &[&layout],
        2,
        &[
            &manifest("oci/digests/index"),
            &manifest("oci/digests/other"),
        ],
    );
}

#[test]
fn an_index_without_a_usable_entry_is_refused_naming_it() {
    // go-containerregistry's test_gc_image_unknown_mediatype: the one entry is no image.
    assert_refused(
        &[&path("oci/unknown-media-type")],
        2,
        &["application/vnd.oci.descriptor.v1+json"],
    );
    // trivy's test_invalid_oci_image.
    assert_refused(&[&path("oci/bad-media")], 2, &["application/badmedia+json"]);
    // containers/image's index-only `manifest` fixture: the manifest blob is not there.
    let missing = crate::support::sha256(b"a manifest that is not here");
    assert_refused(&[&oci("oci/index-only", "v0.1.1")], 4, &[&missing]);
    // stereoscope's valid_manifest: a 0-byte manifest blob.
    assert_refused(
        &[&path("oci/manifest-empty-blob")],
        4,
        &["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    );
}

#[test]
fn several_untagged_images_are_ambiguous() {
    // containers/image's two_images_manifest.
    assert_refused(
        &[&path("oci/two-untagged")],
        2,
        &[
            &manifest("oci/two-untagged/a"),
            &manifest("oci/two-untagged/b"),
        ],
    );
}

#[test]
fn one_tag_naming_two_digests_is_ambiguous() {
    // containers/image's delete_image_two_identical_references resolves 1.0.0 to the first
    // entry; that only reflects its index walk. A docker or containerd image store cannot hold
    // one name for two images, so which one `1.0.0` means is unknown: refused, listing both.
    let message = assert_refused(
        &[&oci("oci/same-ref-two-digests", "1.0.0")],
        2,
        &[
            &manifest("oci/same-ref-two-digests/a"),
            &manifest("oci/same-ref-two-digests/b"),
            "1.0.0",
        ],
    );
    assert!(!message.contains("1.0.0, 1.0.0"), "{message}");
}

#[test]
fn every_kind_of_index_entry_is_found_by_name() {
    // containers/image's name_lookups: an OCI index, an OCI manifest, a docker manifest list,
    // a docker schema 2 manifest; an unknown media type; a name that is not there.
    let layout = "oci/name-lookups";
    for name in ["a", "b", "c", "d"] {
        scans_as(&[&oci(layout, name)], &format!("{layout}:{name}"));
    }
    assert_refused(
        &[&oci(layout, "invalid-mime")],
        2,
        &["application/x-completely-unknown"],
    );
    assert_refused(
        &[&oci(layout, "this-does-not-exist")],
        2,
        &["this-does-not-exist", "tag a", "tag d"],
    );
}

#[test]
fn a_layout_with_many_tags_and_platforms() {
    // containers/image's delete_image_multiple_images.
    let layout = "oci/multiple-images";
    let message = assert_refused(&[&path(layout)], 2, &["latest", "3.18.3", "3.16.7"]);
    assert_eq!(message.matches("3.18.3").count(), 1, "{message}");
    scans_as(&[&oci(layout, "latest")], "oci/multiple-images:latest");
    scans_as(&[&oci(layout, "3.18.3")], "oci/multiple-images:latest");
    scans_as(
        &["--platform", "linux/386", &oci(layout, "latest")],
        "oci/multiple-images:latest/386",
    );
    for tag in ["3.16.7", "3.17.5", "1.0.0"] {
        scans_as(&[&oci(layout, tag)], &format!("{layout}:{tag}"));
    }
    assert_refused(&[&oci(layout, "does-not-exist")], 2, &["does-not-exist"]);
}

#[test]
fn blobs_outside_the_layouts_blobs_directory_are_not_found() {
    // containers/image's delete_image_shared_blobs_dir: the manifest lives in ./shared_blobs,
    // which only containers/image's --shared-blob-dir option knows; the OCI layout
    // specification (and containerd, podman without that option) look in blobs/ only.
    let index: Value =
        serde_json::from_slice(&std::fs::read(path("oci/shared-blobs-dir/index.json")).unwrap())
            .unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    assert_refused(&[&path("oci/shared-blobs-dir")], 4, &[digest]);
}

#[test]
fn a_platform_is_chosen_from_an_index() {
    // stereoscope's multiplatform_oci_dir: linux/amd64 by default (this machine, as docker),
    // the others by --platform, an absent one listing what there is.
    let layout = path("oci/multiplatform");
    scans_as(&[&layout], "oci/multiplatform:linux/amd64");
    for platform in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
        scans_as(
            &["--platform", platform, &layout],
            &format!("oci/multiplatform:{platform}"),
        );
    }
    assert_refused(
        &["--platform", "linux/ppc64le", &layout],
        2,
        &[
            "linux/ppc64le",
            "linux/amd64",
            "linux/arm64",
            "linux/arm/v7",
        ],
    );
}

#[test]
fn a_single_image_of_another_platform_is_scanned_with_a_note() {
    // stereoscope's valid_oci_dir loads its one image whatever --platform says; docker run
    // --platform refuses an image of another platform, and drydock follows docker.
    let layout = path("oci/single-arm64");
    let report = scans_as(&[&layout], "oci/single-arm64");
    let notes = report["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("linux/arm64")),
        "{notes:?}"
    );
    scans_as(&["--platform", "linux/arm64", &layout], "oci/single-arm64");
    assert_refused(
        &["--platform", "linux/amd64", &layout],
        2,
        &["linux/arm64", "linux/amd64"],
    );
    // An amd64 image has no such note.
    let (_, report) = scan_json(&[&path("oci/one-image")]);
    assert!(
        !report["notes"].to_string().contains("platform"),
        "{}",
        report["notes"]
    );
}

#[test]
fn broken_index_json_documents_are_invalid() {
    // stereoscope's no_manifests and invalid_file, trivy's test_bad_index_json.oci,
    // test_no_valid_manifests.oci and test_index_json_dir.oci.
    for (layout, needles) in [
        ("oci/no-manifests", &["index.json"][..]),
        ("oci/index-empty-file", &["index.json"]),
        ("oci/index-foobar", &["index.json"]),
        ("oci/index-empty-object", &["index.json"]),
        ("oci/index-json-dir", &["index.json", "directory"]),
    ] {
        let message = assert_refused(&[&path(layout)], 4, needles);
        assert!(
            !message.contains("foobar"),
            "{layout}: quotes the bytes: {message}"
        );
    }
}

#[test]
fn a_tag_selects_and_a_missing_tag_is_named() {
    // trivy's test_image_tag.oci and fanal-image/single.
    let layout = "oci/one-tag";
    scans_as(&[&oci(layout, "0.0.1")], layout);
    scans_as(&[&path(layout)], layout);
    scans_as(
        &[&format!("oci:{}:{}", path(layout), manifest(layout))],
        layout,
    );
    scans_as(&["--image", &manifest(layout), &path(layout)], layout);
    assert_refused(&[&oci(layout, "0.0.0")], 2, &["0.0.0", "0.0.1"]);
    let unknown = format!("sha256:{}", "1".repeat(64));
    assert_refused(
        &[&format!("oci:{}:{unknown}", path(layout))],
        2,
        &[&unknown],
    );
}

#[test]
fn a_tagged_nested_index() {
    // trivy's fanal-image/multi: index.json -> index (tg11) -> amd64 and arm.
    let layout = "oci/tagged-nested-index";
    scans_as(&[&oci(layout, "tg11")], "oci/tagged-nested-index:tg11");
    scans_as(&[&path(layout)], "oci/tagged-nested-index:tg11");
    scans_as(
        &["--platform", "linux/arm/v7", &oci(layout, "tg11")],
        "oci/tagged-nested-index:tg11/arm",
    );
    assert_refused(&[&oci(layout, "tg12")], 2, &["tg12", "tg11"]);
}

#[test]
fn artifacts_are_not_container_images() {
    // regclient's testrepo: a1 (an empty config) is ErrUnsupportedMediaType there; containerd
    // refuses to unpack an artifact too. A Helm chart and a manifest with artifactType alike.
    let layout = "oci/artifacts";
    assert_refused(
        &[&oci(layout, "a1")],
        2,
        &["not a container image", "application/vnd.oci.empty.v1+json"],
    );
    assert_refused(
        &[&oci(layout, "helm")],
        2,
        &[
            "not a container image",
            "application/vnd.cncf.helm.config.v1+json",
            "Helm chart",
        ],
    );
    assert_refused(
        &[&oci(layout, "sbom")],
        2,
        &["not a container image", "application/spdx+json"],
    );
    // Choosing from an index skips the artifacts.
    scans_as(&[&oci(layout, "mixed")], "oci/artifacts:mixed");
    scans_as(&[&oci(layout, "v1")], "oci/artifacts:v1");
    for tag in ["v2", "v3", "stable"] {
        scans_as(&[&oci(layout, tag)], "oci/artifacts:v2");
    }
}

#[test]
fn the_candidates_of_an_ambiguous_layout_are_told_apart() {
    // Several tags on one digest are one candidate with all its tags; artifacts are not
    // candidates.
    let message = assert_refused(&[&path("oci/artifacts")], 2, &["v1", "v2", "v3", "stable"]);
    let v2 = manifest("oci/artifacts:v2");
    assert_eq!(message.matches(&v2).count(), 1, "{message}");
    for artifact in ["a1", "helm", "sbom"] {
        assert!(
            !message.contains(&format!("tag {artifact}")),
            "{artifact} is no image: {message}"
        );
    }
}

#[test]
fn nested_and_looping_indexes() {
    let layout = "oci/artifacts";
    scans_as(&[&oci(layout, "deep3")], "oci/artifacts:deep3");
    // Nesting is bounded (hostile input); a loop cannot be content-addressed, so the looping
    // index fails its digest check.
    assert_refused(&[&oci(layout, "deep10")], 4, &["nested"]);
    assert_refused(&[&oci(layout, "loop")], 4, &["digest mismatch"]);
}

// ---- skopeo dir:, and what is not an image ------------------------------------------------

#[test]
fn skopeo_dir_layouts() {
    // skopeo's uncompressed-image-s2 (`skopeo copy … dir:PATH`, uncompressed layers).
    let dir = path("skopeo-dir/s2");
    for form in [dir.clone(), format!("dir:{dir}")] {
        scans_as(&[&form], "skopeo-dir/s2");
        assert_eq!(
            drydock_tree(&[&form]),
            drydock_tree(&[&path("base/oci")]),
            "{form}"
        );
    }
    // uncompressed-image-s1: schema 1 is refused, saying what to do.
    for form in [
        path("skopeo-dir/s1"),
        format!("dir:{}", path("skopeo-dir/s1")),
    ] {
        let (code, message) = refused(&[&form]);
        assert!(code == 4 || code == 2, "{form}: {code} {message}");
        assert!(message.contains("schema 1"), "{message}");
        assert!(
            message.contains("re-push") || message.contains("convert"),
            "{message}"
        );
    }
}

#[test]
fn what_is_not_an_image_is_named() {
    // dive's test-gzip-image.tar (buildx type=tar): a file tree, not an image.
    assert_refused(
        &[&path("not-images/rootfs.tar")],
        4,
        &["manifest.json", "index.json"],
    );
    assert_refused(&[&path("not-images/image.zip")], 4, &["ZIP"]);
    // oras-go's nontar.tar, and binary garbage starting with a terminal escape.
    assert_refused(&[&path("not-images/nontar.tar")], 4, &["not a tar archive"]);
    assert_refused(
        &[&path("not-images/garbage.tar")],
        4,
        &["not a tar archive"],
    );
}
