//! Small helpers for the blobs of hand-written images: digests, gzip, and Debian's compressors.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sha2::{Digest as _, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sha256:<hex>`, as descriptors and diff ids write it.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

pub fn gzip(bytes: &[u8], level: flate2::Compression) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Pipes `bytes` through a program (`xz`, `bzip2`, `zstd`): written from a thread, so that a
/// large input cannot deadlock against the program's output.
pub fn pipe_through(program: &str, args: &[&str], bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_end(&mut out)?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("{program}: writer thread"))??;
    if !child.wait()?.success() {
        bail!("{program} failed");
    }
    Ok(out)
}

/// Writes an OCI layout's `index.json` listing `manifests` (descriptors as JSON).
pub fn write_index_json(dir: &Path, manifests: &[serde_json::Value]) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))?;
    std::fs::write(dir.join("index.json"), bytes)?;
    Ok(())
}
