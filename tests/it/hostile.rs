//! Hostile and broken images: each must end in a no-verdict exit code with a one-line error
//! naming the blob and the path, never a panic, and nothing written anywhere.

use std::io::Read;
use std::path::Path;

use crate::support::{RawLayer, TarEntry, drydock, gzip, sha256, tar_bytes, write_layout};

/// Scans `image` from an empty working directory and returns (exit code, stderr); checks the
/// error is one line and that nothing appeared in the working directory.
fn scan_bad(image: &Path) -> (i32, String) {
    let cwd = tempfile::tempdir().unwrap();
    let output = drydock()
        .args(["scan", image.to_str().unwrap()])
        .current_dir(cwd.path())
        .env("HOME", cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "a one-line error: {stderr}"
    );
    assert!(stderr.starts_with("drydock: error: "), "{stderr}");
    assert!(output.stdout.is_empty(), "no report without a verdict");
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing written"
    );
    (output.status.code().unwrap_or(-1), stderr)
}

fn layout_with(layers: Vec<RawLayer>) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_layout(dir.path(), &layers, &["/app"]);
    (dir, path)
}

fn good_layer() -> RawLayer {
    RawLayer::gzip(&[
        TarEntry::Dir("app/"),
        TarEntry::File("app/data", &[42u8; 100_000]),
    ])
}

#[test]
fn a_path_climbing_out_of_the_root() {
    let (_dir, layout) = layout_with(vec![RawLayer::gzip(&[TarEntry::File(
        "../../etc/passwd",
        b"x",
    )])]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("layer 0 (sha256:"),
        "names the blob: {message}"
    );
    assert!(
        message.contains("`/../../etc/passwd`") && message.contains("climbs out"),
        "{message}"
    );
}

#[test]
fn a_symlink_pointing_out_of_the_root() {
    let (_dir, layout) = layout_with(vec![RawLayer::gzip(&[
        TarEntry::Symlink("escape", "../../../etc"),
        TarEntry::File("escape/passwd", b"pwned"),
    ])]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("`/escape`") && message.contains("../../../etc"),
        "{message}"
    );
}

#[test]
fn a_hardlink_pointing_out_of_the_root() {
    let (_dir, layout) = layout_with(vec![RawLayer::gzip(&[TarEntry::Hardlink(
        "shadow",
        "../../etc/shadow",
    )])]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("`/shadow`") && message.contains("hardlink target"),
        "{message}"
    );
}

#[test]
fn hardlinks_to_nothing_and_to_each_other() {
    let (_dir, layout) = layout_with(vec![RawLayer::gzip(&[
        TarEntry::Hardlink("a", "b"),
        TarEntry::Hardlink("b", "a"),
    ])]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("hardlink target /b does not exist"),
        "{message}"
    );
}

#[test]
fn a_symlink_loop_in_a_parent_directory() {
    let (_dir, layout) = layout_with(vec![RawLayer::gzip(&[
        TarEntry::Symlink("a", "b"),
        TarEntry::Symlink("b", "a"),
        TarEntry::File("a/file", b"x"),
    ])]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("`/a/file`") && message.contains("too many levels of symbolic links"),
        "{message}"
    );
}

#[test]
fn a_blob_whose_bytes_do_not_match_its_digest() {
    let mut layer = good_layer();
    let claimed = sha256(b"something else");
    layer.claimed_digest = Some(claimed.clone());
    let (dir, layout) = layout_with(vec![layer]);
    // The blob is stored under the claimed digest, as a tampered registry would serve it.
    let blobs = dir.path().join("blobs/sha256");
    let real = good_layer();
    std::fs::write(blobs.join(&claimed[7..]), &real.blob).unwrap();
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("digest mismatch") && message.contains(&claimed),
        "{message}"
    );
}

#[test]
fn a_layer_whose_diff_id_is_wrong() {
    let mut layer = good_layer();
    layer.diff_id = sha256(b"not this tar");
    let (_dir, layout) = layout_with(vec![layer]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("diff_id") && message.contains("digest mismatch"),
        "{message}"
    );
}

#[test]
fn a_manifest_that_lies_about_sizes() {
    let mut layer = good_layer();
    layer.claimed_size = Some(layer.blob.len() as u64 + 1);
    let (_dir, layout) = layout_with(vec![layer]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("size mismatch"), "{message}");
}

#[test]
fn a_truncated_layer() {
    let full = good_layer();
    let cut = full.blob[..full.blob.len() / 2].to_vec();
    // The descriptor matches the truncated bytes, so only decompression can notice.
    let layer = RawLayer {
        blob: cut,
        diff_id: full.diff_id.clone(),
        claimed_digest: None,
        claimed_size: None,
        media_type: full.media_type.clone(),
        absent: false,
    };
    let (_dir, layout) = layout_with(vec![layer]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("layer 0 (sha256:"), "{message}");
    assert!(
        message.contains("/app/data"),
        "names the entry being read: {message}"
    );
}

#[test]
fn a_layer_that_is_not_a_tar() {
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let layer = RawLayer {
        diff_id: sha256(&junk),
        blob: gzip(&junk),
        claimed_digest: None,
        claimed_size: None,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        absent: false,
    };
    let (_dir, layout) = layout_with(vec![layer]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("layer 0 (sha256:"), "{message}");
}

#[test]
fn an_unknown_layer_media_type() {
    let mut layer = good_layer();
    layer.media_type = "application/vnd.example.helm.chart".into();
    let (_dir, layout) = layout_with(vec![layer]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("unknown layer media type `application/vnd.example.helm.chart`"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "just some text, not a tar archive at all\n".repeat(40),
    )
    .unwrap();
    let (code, message) = scan_bad(&path);
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("notes.txt") && message.contains("not"),
        "{message}"
    );

    let tar_path = dir.path().join("plain.tar");
    std::fs::write(&tar_path, tar_bytes(&[TarEntry::File("hello.txt", b"hi")])).unwrap();
    let (code, message) = scan_bad(&tar_path);
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("neither manifest.json"), "{message}");
}

#[test]
fn a_missing_file_is_unavailable_not_invalid() {
    let (code, message) = scan_bad(Path::new("/nonexistent/image.tar"));
    assert_eq!(code, 3, "{message}");
    assert!(message.contains("/nonexistent/image.tar"), "{message}");
}

#[test]
fn a_layer_whose_media_type_lies_about_its_compression_is_read_with_a_note() {
    let mut layer = good_layer();
    layer.media_type = "application/vnd.oci.image.layer.v1.tar+zstd".into();
    let (_dir, layout) = layout_with(vec![layer]);
    let (_, report) = crate::support::scan_json(&[layout.to_str().unwrap()]);
    let notes = report["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| {
            let n = n.as_str().unwrap();
            n.contains("declares `application/vnd.oci.image.layer.v1.tar+zstd`")
                && n.contains("gzip-compressed")
        }),
        "{notes:?}"
    );
    // The truth told by the media type gets no note.
    let (_dir, layout) = layout_with(vec![good_layer()]);
    let (_, report) = crate::support::scan_json(&[layout.to_str().unwrap()]);
    assert!(
        !report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("declares")),
        "{report}"
    );
}

/// A zstd layer of a few hundred KiB that expands to 3 GiB of zeros: refused by its ratio once
/// past the allowance, naming the layer and the flag, long before the per-layer size limit.
#[test]
fn a_decompression_bomb_is_refused_by_its_ratio() {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    {
        let mut builder = tar::Builder::new(&mut encoder);
        let mut header = tar::Header::new_gnu();
        header.set_size(3 << 30);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "zeros", std::io::repeat(0).take(3 << 30))
            .unwrap();
        builder.finish().unwrap();
    }
    let blob = encoder.finish().unwrap();
    assert!(
        blob.len() < 1 << 20,
        "the fixture is a bomb: {}",
        blob.len()
    );
    let layer = RawLayer {
        // Never reached: the walk stops before the layer's end.
        diff_id: sha256(b"not computed"),
        blob,
        claimed_digest: None,
        claimed_size: None,
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
        absent: false,
    };
    let (_dir, layout) = layout_with(vec![layer]);
    let (code, message) = scan_bad(&layout);
    assert_eq!(code, 4, "{message}");
    assert!(message.contains("layer 0 (sha256:"), "{message}");
    assert!(
        message.contains("200 times its compressed size"),
        "{message}"
    );
    assert!(message.contains("--max-expansion"), "{message}");
}

#[test]
fn the_layer_size_limit_comes_from_the_flag_or_the_policy() {
    let (_dir, layout) = layout_with(vec![good_layer()]);
    let image = layout.to_str().unwrap();
    let output = drydock()
        .args(["scan", image, "--max-layer-size", "50KB"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("more than 50000 bytes"), "{stderr}");
    assert!(stderr.contains("--max-layer-size"), "{stderr}");
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("drydock.toml");
    std::fs::write(&policy, "[limits]\nmax-layer-size = \"50KB\"\n").unwrap();
    let output = drydock()
        .args(["scan", image, "--policy", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "the policy's limit applies");
    // The command line wins over the policy.
    let output = drydock()
        .args([
            "scan",
            image,
            "--policy",
            policy.to_str().unwrap(),
            "--max-layer-size",
            "1MiB",
        ])
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&policy, "[limits]\nmax-layer-size = \"lots\"\n").unwrap();
    let output = drydock()
        .args(["scan", image, "--policy", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a bad policy is a usage error"
    );
}

/// A file name and a history line full of terminal control sequences: no output of drydock
/// (any report format, `tree`, `inspect`, logs) carries a raw control character or a
/// bidirectional override, and Markdown gets no link or HTML from the image.
#[test]
fn terminal_control_sequences_from_the_image_are_escaped_everywhere() {
    let evil = "app/\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\u{202e}txt.exe";
    let script = b"#!/bin/nope\n";
    let mut layer = RawLayer::gzip(&[TarEntry::Dir("app/"), TarEntry::File(evil, script)]);
    layer.media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
    let dir = tempfile::tempdir().unwrap();
    let entrypoint = format!("/{evil}");
    let layout = write_layout(dir.path(), &[layer], &[&entrypoint]);
    let image = layout.to_str().unwrap();
    // What a person reads must show no bidirectional override either; machine formats keep
    // the exact name (JSON and XML escape controls their own way).
    let check = |what: &str, bytes: &[u8], for_people: bool| {
        let text = String::from_utf8_lossy(bytes);
        let bad: Vec<char> = text
            .chars()
            .filter(|c| {
                (c.is_control() && *c != '\n')
                    || (for_people
                        && matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
            })
            .collect();
        assert!(bad.is_empty(), "{what} carries {bad:?}:\n{text}");
    };
    let clean = |what: &str, bytes: &[u8]| check(what, bytes, true);
    for format in ["human", "json", "sarif", "junit", "markdown"] {
        let output = drydock()
            .args([
                "scan", image, "--format", format, "--color", "always", "-vvv",
            ])
            .output()
            .unwrap();
        assert!(matches!(output.status.code(), Some(0 | 1)), "{format}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("pwned"),
            "{format} names the file: {stdout}"
        );
        if format == "human" {
            // The report's own colours are the only escape sequences: strip them, then check.
            let without_colours = regex_lite_strip_sgr(&stdout);
            clean("the human report", without_colours.as_bytes());
        } else {
            check(
                format,
                &output.stdout,
                matches!(format, "markdown" | "junit"),
            );
        }
        clean("the logs", &output.stderr);
        if format == "markdown" {
            assert!(
                !stdout.contains("<img") && !stdout.contains("](http"),
                "{stdout}"
            );
        }
    }
    let tree = drydock().args(["tree", image]).output().unwrap();
    assert!(tree.status.success());
    clean("tree", &tree.stdout);
    let inspect = drydock()
        .args(["inspect", image, &entrypoint])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    clean("inspect", &inspect.stdout);
    // An error that names the path escapes it too.
    let missing = drydock()
        .args(["inspect", image, &format!("{entrypoint}-gone")])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    clean("an error", &missing.stderr);
}

/// Removes the SGR colour sequences (`ESC [ … m`) the human report writes itself.
fn regex_lite_strip_sgr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\u{1b}[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('m') {
            Some(end) if after[..end].chars().all(|c| c.is_ascii_digit() || c == ';') => {
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("\u{1b}[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
