//! The image conformance suite (issue #12): images of every shape the test fixtures of dive,
//! go-containerregistry, containers/image, stereoscope, trivy, regclient, skopeo and oras-go
//! hold (`/work/shared/reference/peer-fixture-shapes.md`), made here, never copied.
//!
//! Shapes a tool writes come from the tool (umoci builds layouts, skopeo converts them to
//! `docker-archive:`, `oci-archive:` and `dir:`); shapes no tool writes on demand (kaniko's
//! config member, Docker 25's `"manifests": null`, broken documents, odd layer endings, nested
//! indexes, artifacts) are written here as JSON and raw tar headers. Contents are small real
//! files: Debian's static busybox and this machine's `/etc` files.
//!
//! Besides the images, `expect.json` records what each one holds (config digest, manifest
//! digest, diff ids, platform), computed from the bytes written, for the tests to compare with.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cmd::run;
use crate::fixtures::{Builder, skopeo_copy};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

pub fn build(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut expect = Expect::default();
    let base = base_image(dir, &mut expect)?;
    compressed_archives(dir)?;
    prefixed_archives(dir)?;
    multi_tags(dir, &base, &mut expect)?;
    skopeo_dir(dir, &base, &mut expect)?;
    dive_like(root, dir, &mut expect)?;
    whiteouts(dir, &mut expect)?;
    buildx_archives(dir, &mut expect)?;
    hand_docker_archives(dir, &mut expect)?;
    broken_manifest_json(dir)?;
    layer_endings(dir, &mut expect)?;
    oci_shapes(dir, &mut expect)?;
    not_images(dir)?;
    fs::write(
        dir.join("expect.json"),
        serde_json::to_vec_pretty(&expect.0)?,
    )?;
    Ok(())
}

/// What each fixture holds, by a name the tests use.
#[derive(Default)]
struct Expect(BTreeMap<String, Value>);

impl Expect {
    fn add(&mut self, name: &str, facts: &Facts) {
        self.0.insert(
            name.to_owned(),
            json!({
                "config_digest": facts.config_digest,
                "manifest_digest": facts.manifest_digest,
                "diff_ids": facts.diff_ids,
                "platform": facts.platform,
            }),
        );
    }
}

#[derive(Clone)]
struct Facts {
    config_digest: String,
    manifest_digest: Option<String>,
    diff_ids: Vec<String>,
    platform: String,
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// A small real file of this machine, or `fallback` where it is absent.
fn host_file(path: &str, fallback: &str) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|_| fallback.as_bytes().to_vec())
}

// ---- tar, by hand -------------------------------------------------------------------------

/// One tar member, written with a raw ustar header so that any name (`./x`, `sha256:…`) and
/// any ending can be written.
enum Entry {
    File(String, Vec<u8>, u32),
    Dir(String),
    Symlink(String, String),
}

fn file(name: &str, data: impl Into<Vec<u8>>) -> Entry {
    Entry::File(name.to_owned(), data.into(), 0o644)
}

fn dir_entry(name: &str) -> Entry {
    Entry::Dir(name.to_owned())
}

fn symlink_entry(name: &str, target: &str) -> Entry {
    Entry::Symlink(name.to_owned(), target.to_owned())
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}", width = field.len() - 1);
    field[..text.len()].copy_from_slice(text.as_bytes());
    field[text.len()] = 0;
}

fn header(name: &str, kind: u8, size: u64, mode: u32, link: &str) -> anyhow::Result<[u8; 512]> {
    if name.len() > 100 || link.len() > 100 {
        bail!("tar name too long for ustar: {name}");
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// One member: header, data, padding.
fn member(entry: &Entry) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    match entry {
        Entry::File(name, data, mode) => {
            out.extend_from_slice(&header(name, b'0', data.len() as u64, *mode, "")?);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        Entry::Dir(name) => out.extend_from_slice(&header(name, b'5', 0, 0o755, "")?),
        Entry::Symlink(name, target) => {
            out.extend_from_slice(&header(name, b'2', 0, 0o777, target)?)
        }
    }
    Ok(out)
}

/// A whole tar stream, with its two end-of-archive blocks.
fn tar(entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend(member(entry)?);
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

/// Every member of a tar file, as entries (regular files, directories, symlinks).
fn read_tar(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut archive = tar::Archive::new(fs::File::open(path)?);
    let mut entries = Vec::new();
    for item in archive.entries()? {
        let mut item = item?;
        let name = item.path()?.to_string_lossy().into_owned();
        match item.header().entry_type() {
            tar::EntryType::Directory => entries.push(Entry::Dir(name)),
            tar::EntryType::Symlink => {
                let target = item
                    .link_name()?
                    .context("a symlink target")?
                    .to_string_lossy()
                    .into_owned();
                entries.push(Entry::Symlink(name, target));
            }
            _ => {
                let mode = item.header().mode()?;
                let mut data = Vec::new();
                item.read_to_end(&mut data)?;
                entries.push(Entry::File(name, data, mode));
            }
        }
    }
    Ok(entries)
}

/// A directory as a tar (relative names, directories first), like buildx's `type=oci` output.
fn tar_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut entries = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let mut children: Vec<_> = fs::read_dir(dir.join(&relative))?
            .flatten()
            .map(|e| e.path())
            .collect();
        children.sort();
        for child in children {
            let name = relative.join(child.file_name().context("a name")?);
            let shown = name.to_string_lossy().into_owned();
            if child.is_dir() {
                entries.push(dir_entry(&format!("{shown}/")));
                pending.push(name);
            } else {
                entries.push(file(&shown, fs::read(&child)?));
            }
        }
    }
    tar(&entries)
}

// ---- layers, configs, layouts ------------------------------------------------------------

#[derive(Clone)]
struct Layer {
    blob: Vec<u8>,
    diff_id: String,
    media_type: String,
    annotations: Option<Value>,
}

impl Layer {
    fn gzip(entries: &[Entry]) -> anyhow::Result<Self> {
        let plain = tar(entries)?;
        Ok(Self {
            diff_id: crate::blob::digest(&plain),
            blob: crate::blob::gzip(&plain, flate2::Compression::default())?,
            media_type: OCI_LAYER_GZIP.into(),
            annotations: None,
        })
    }

    fn plain(entries: &[Entry]) -> anyhow::Result<Self> {
        Self::raw(tar(entries)?)
    }

    /// An uncompressed layer of exactly these bytes.
    fn raw(bytes: Vec<u8>) -> anyhow::Result<Self> {
        Ok(Self {
            diff_id: crate::blob::digest(&bytes),
            blob: bytes,
            media_type: OCI_LAYER.into(),
            annotations: None,
        })
    }

    fn zstd(entries: &[Entry]) -> anyhow::Result<Self> {
        let plain = tar(entries)?;
        Ok(Self {
            diff_id: crate::blob::digest(&plain),
            blob: crate::blob::pipe_through("zstd", &["-q", "-c"], &plain)?,
            media_type: OCI_LAYER_ZSTD.into(),
            annotations: None,
        })
    }

    fn media(mut self, media_type: &str) -> Self {
        self.media_type = media_type.into();
        self
    }
}

/// A few small real files, different per `tag` so that every image differs.
fn etc_files(tag: &str) -> Vec<Entry> {
    vec![
        dir_entry("etc/"),
        file("etc/passwd", PASSWD),
        file("etc/group", GROUP),
        file(
            "etc/os-release",
            host_file("/etc/os-release", "ID=debian\n"),
        ),
        file("etc/shells", host_file("/etc/shells", "/bin/sh\n")),
        file("etc/image-tag", format!("{tag}\n")),
    ]
}

fn config_json(platform: &str, diff_ids: &[String], created_by: &[&str]) -> Value {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("linux");
    let arch = parts.next().unwrap_or("amd64");
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": created_by.iter().map(|c| json!({"created": "2024-01-01T00:00:00Z", "created_by": c})).collect::<Vec<_>>(),
    });
    if let Some(variant) = parts.next() {
        config["variant"] = json!(variant);
    }
    config
}

fn platform_json(platform: &str) -> Value {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut value =
        json!({"os": parts[0], "architecture": parts.get(1).copied().unwrap_or("amd64")});
    if let Some(variant) = parts.get(2) {
        value["variant"] = json!(variant);
    }
    value
}

/// An OCI image layout being written by hand.
struct Layout {
    dir: PathBuf,
}

/// How an image's manifest and config are written.
struct Image<'a> {
    platform: &'a str,
    layers: Vec<Layer>,
    manifest_type: &'a str,
    config_type: &'a str,
    /// Replaces the generated config (artifacts).
    config_bytes: Option<Vec<u8>>,
    artifact_type: Option<&'a str>,
    /// Put the platform on the descriptor (as an index entry does).
    descriptor_platform: bool,
}

impl<'a> Image<'a> {
    fn new(platform: &'a str, layers: Vec<Layer>) -> Self {
        Self {
            platform,
            layers,
            manifest_type: OCI_MANIFEST,
            config_type: OCI_CONFIG,
            config_bytes: None,
            artifact_type: None,
            descriptor_platform: true,
        }
    }

    fn small(platform: &'a str, tag: &str) -> anyhow::Result<Self> {
        Ok(Self::new(platform, vec![Layer::gzip(&etc_files(tag))?]))
    }
}

impl Layout {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir.join("blobs/sha256"))?;
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Without the `oci-layout` file, as some peers' fixtures are.
    fn bare(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir.join("blobs/sha256"))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn put(&self, bytes: &[u8]) -> anyhow::Result<String> {
        let digest = crate::blob::digest(bytes);
        fs::write(self.dir.join("blobs/sha256").join(hex(&digest)), bytes)?;
        Ok(digest)
    }

    fn descriptor(&self, media_type: &str, bytes: &[u8]) -> anyhow::Result<Value> {
        let digest = self.put(bytes)?;
        Ok(json!({"mediaType": media_type, "digest": digest, "size": bytes.len()}))
    }

    /// Writes the image's blobs; returns its manifest descriptor and what it holds.
    fn image(&self, image: &Image<'_>) -> anyhow::Result<(Value, Facts)> {
        let mut layers = Vec::new();
        for layer in &image.layers {
            let mut descriptor = self.descriptor(&layer.media_type, &layer.blob)?;
            if let Some(annotations) = &layer.annotations {
                descriptor["annotations"] = annotations.clone();
            }
            layers.push(descriptor);
        }
        let diff_ids: Vec<String> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let created_by: Vec<String> = (0..image.layers.len())
            .map(|i| format!("COPY layer-{i} /"))
            .collect();
        let created_by: Vec<&str> = created_by.iter().map(String::as_str).collect();
        let config = match &image.config_bytes {
            Some(bytes) => bytes.clone(),
            None => serde_json::to_vec(&config_json(image.platform, &diff_ids, &created_by))?,
        };
        let config_descriptor = self.descriptor(image.config_type, &config)?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": image.manifest_type,
            "config": config_descriptor,
            "layers": layers,
        });
        if let Some(artifact_type) = image.artifact_type {
            manifest["artifactType"] = json!(artifact_type);
        }
        let bytes = serde_json::to_vec(&manifest)?;
        let mut descriptor = self.descriptor(image.manifest_type, &bytes)?;
        if image.descriptor_platform && image.config_bytes.is_none() {
            descriptor["platform"] = platform_json(image.platform);
        }
        if let Some(artifact_type) = image.artifact_type {
            descriptor["artifactType"] = json!(artifact_type);
        }
        let facts = Facts {
            config_digest: crate::blob::digest(&config),
            manifest_digest: descriptor["digest"].as_str().map(str::to_owned),
            diff_ids,
            platform: image.platform.to_owned(),
        };
        Ok((descriptor, facts))
    }

    /// Writes an index blob of `manifests`; returns its descriptor.
    fn index(&self, media_type: &str, manifests: &[Value]) -> anyhow::Result<Value> {
        let bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": manifests,
        }))?;
        self.descriptor(media_type, &bytes)
    }

    /// Writes `index.json`.
    fn top(&self, manifests: &[Value]) -> anyhow::Result<()> {
        crate::blob::write_index_json(&self.dir, manifests)
    }
}

fn tagged(descriptor: &Value, tag: &str) -> Value {
    let mut d = descriptor.clone();
    d["annotations"] = json!({ REF_NAME: tag });
    d
}

fn without_platform(descriptor: &Value) -> Value {
    let mut d = descriptor.clone();
    if let Some(object) = d.as_object_mut() {
        object.remove("platform");
    }
    d
}

/// What an OCI layout made by a tool holds for `tag`: read back from its files.
fn layout_facts(layout: &Path, tag: &str) -> anyhow::Result<Facts> {
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let descriptor = index["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|d| d["annotations"][REF_NAME] == tag))
        .with_context(|| format!("tag {tag} in {}", layout.display()))?;
    let manifest_digest = descriptor["digest"].as_str().context("digest")?.to_owned();
    let manifest: Value = serde_json::from_slice(&fs::read(
        layout.join("blobs/sha256").join(hex(&manifest_digest)),
    )?)?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("config digest")?
        .to_owned();
    let config: Value = serde_json::from_slice(&fs::read(
        layout.join("blobs/sha256").join(hex(&config_digest)),
    )?)?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .context("diff_ids")?
        .iter()
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect();
    Ok(Facts {
        config_digest,
        manifest_digest: Some(manifest_digest),
        diff_ids,
        platform: format!(
            "{}/{}",
            config["os"].as_str().unwrap_or(""),
            config["architecture"].as_str().unwrap_or("")
        ),
    })
}

// ---- docker archives, by hand -------------------------------------------------------------

/// The parts of one image for a hand-written docker archive.
struct Parts {
    config: Vec<u8>,
    /// Uncompressed layer tars.
    layers: Vec<Vec<u8>>,
}

impl Parts {
    fn new(platform: &str, layers: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let diff_ids: Vec<String> = layers.iter().map(|l| crate::blob::digest(l)).collect();
        let created_by: Vec<String> = (0..layers.len())
            .map(|i| format!("COPY layer-{i} /"))
            .collect();
        let created_by: Vec<&str> = created_by.iter().map(String::as_str).collect();
        Ok(Self {
            config: serde_json::to_vec(&config_json(platform, &diff_ids, &created_by))?,
            layers,
        })
    }

    fn small(tag: &str) -> anyhow::Result<Self> {
        Self::new("linux/amd64", vec![tar(&etc_files(tag))?])
    }

    fn facts(&self) -> Facts {
        Facts {
            config_digest: crate::blob::digest(&self.config),
            manifest_digest: None,
            diff_ids: self.layers.iter().map(|l| crate::blob::digest(l)).collect(),
            platform: "linux/amd64".into(),
        }
    }

    /// Members as `docker save` (before Docker 25) and skopeo write them: `<hex>.json` and
    /// `<hex>/layer.tar`; returns the members and the manifest.json entry.
    fn legacy_members(&self, tags: &[&str]) -> (Vec<Entry>, Value) {
        let config_name = format!("{}.json", crate::blob::sha256_hex(&self.config));
        let mut entries = vec![file(&config_name, self.config.clone())];
        let mut names = Vec::new();
        for layer in &self.layers {
            let id = crate::blob::sha256_hex(layer);
            entries.push(dir_entry(&format!("{id}/")));
            entries.push(file(&format!("{id}/layer.tar"), layer.clone()));
            names.push(format!("{id}/layer.tar"));
        }
        (
            entries,
            json!({"Config": config_name, "RepoTags": tags, "Layers": names}),
        )
    }
}

fn docker_archive(path: &Path, images: &[(&Parts, &[&str])]) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    let mut manifest = Vec::new();
    for (parts, tags) in images {
        let (members, entry) = parts.legacy_members(tags);
        entries.extend(members);
        manifest.push(entry);
    }
    entries.push(file("manifest.json", serde_json::to_vec(&manifest)?));
    fs::write(path, tar(&entries)?)?;
    Ok(())
}

// ---- the fixtures -------------------------------------------------------------------------

/// A two-layer busybox image made with umoci, and its docker-archive (skopeo), OCI archive
/// (skopeo): go-containerregistry's test_image_1, containers/image's almostempty,
/// stereoscope's valid-oci.tar, oras-go's hello-world.tar, trivy's alpine archives.
fn base_image(dir: &Path, expect: &mut Expect) -> anyhow::Result<PathBuf> {
    let base = dir.join("base");
    let builder = Builder::new(&base)?;
    builder.put("bin/busybox", Path::new("/bin/busybox"), 0o755)?;
    builder.link("bin/sh", "busybox")?;
    builder.link("bin/ls", "busybox")?;
    builder.write("etc/passwd", PASSWD.as_bytes(), 0o644)?;
    builder.write("etc/group", GROUP.as_bytes(), 0o644)?;
    builder.dir("tmp", 0o1777)?;
    builder.commit("ADD busybox-static /")?;
    builder.write(
        "etc/os-release",
        &host_file("/etc/os-release", "ID=debian\n"),
        0o644,
    )?;
    builder.write(
        "etc/debian_version",
        &host_file("/etc/debian_version", "12\n"),
        0o644,
    )?;
    builder.commit("COPY etc /etc")?;
    // Config changes: umoci records them as history entries with empty_layer set, as docker
    // does for ENV and CMD (go-containerregistry's source_image_with_empty_layer_history).
    builder.config(&["--config.env", "APP=conformance"])?;
    builder.config(&["--config.cmd", "/bin/sh"])?;
    let layout = builder.finish()?;
    let facts = layout_facts(&layout, "latest")?;
    expect.add("base", &facts);
    let from = format!("oci:{}:latest", layout.display());
    skopeo_copy(
        &from,
        &format!(
            "docker-archive:{}:conformance/base:latest",
            base.join("docker.tar").display()
        ),
        &[],
    )?;
    skopeo_copy(
        &from,
        &format!("oci-archive:{}:latest", base.join("oci.tar").display()),
        &[],
    )?;
    Ok(layout)
}

/// Whole-archive compression of `docker save` output: gzip, bzip2, xz, zstd.
fn compressed_archives(dir: &Path) -> anyhow::Result<()> {
    let base = dir.join("base");
    let plain = fs::read(base.join("docker.tar"))?;
    fs::write(
        base.join("docker.tar.gz"),
        crate::blob::gzip(&plain, flate2::Compression::default())?,
    )?;
    fs::write(
        base.join("docker.tar.bz2"),
        crate::blob::pipe_through("bzip2", &["-c"], &plain)?,
    )?;
    fs::write(
        base.join("docker.tar.xz"),
        crate::blob::pipe_through("xz", &["-c", "-T1"], &plain)?,
    )?;
    fs::write(
        base.join("docker.tar.zst"),
        crate::blob::pipe_through("zstd", &["-q", "-c"], &plain)?,
    )?;
    Ok(())
}

/// The same archives with every member named `./…` (oras-go's hello-world-prefixed-path,
/// go-containerregistry's TestLoadManifestPrefixPath).
fn prefixed_archives(dir: &Path) -> anyhow::Result<()> {
    let base = dir.join("base");
    for (from, to) in [
        ("oci.tar", "oci-prefixed.tar"),
        ("docker.tar", "docker-prefixed.tar"),
    ] {
        let entries = read_tar(&base.join(from))?
            .into_iter()
            .map(|e| match e {
                Entry::File(n, d, m) => Entry::File(format!("./{n}"), d, m),
                Entry::Dir(n) => Entry::Dir(format!("./{n}")),
                // Targets stay relative to the member's directory.
                Entry::Symlink(n, t) => Entry::Symlink(format!("./{n}"), t),
            })
            .collect::<Vec<_>>();
        fs::write(base.join(to), tar(&entries)?)?;
    }
    Ok(())
}

/// One image under two tags (stereoscope's valid-multi-manifest-with-tags), by skopeo.
fn multi_tags(dir: &Path, layout: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let out = dir.join("multi-tags");
    fs::create_dir_all(&out)?;
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!(
            "docker-archive:{}:conformance/anchore-engine:latest",
            out.join("docker.tar").display()
        ),
        &["--additional-tag", "conformance/anchore-engine:v0.8.2"],
    )?;
    let facts = layout_facts(layout, "latest")?;
    expect.add("multi-tags", &facts);
    Ok(())
}

/// skopeo's `dir:` transport (skopeo's uncompressed-image-s2), and a schema 1 twin
/// (uncompressed-image-s1), written by hand since skopeo 1.9 no longer writes schema 1.
fn skopeo_dir(dir: &Path, layout: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let out = dir.join("skopeo-dir");
    fs::create_dir_all(&out)?;
    let s2 = out.join("s2");
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!("dir:{}", s2.display()),
        &["--dest-decompress"],
    )?;
    let manifest: Value = serde_json::from_slice(&fs::read(s2.join("manifest.json"))?)?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("config")?
        .to_owned();
    let config: Value = serde_json::from_slice(&fs::read(s2.join(hex(&config_digest)))?)?;
    expect.add(
        "skopeo-dir/s2",
        &Facts {
            config_digest,
            manifest_digest: Some(crate::blob::digest(&fs::read(s2.join("manifest.json"))?)),
            diff_ids: config["rootfs"]["diff_ids"]
                .as_array()
                .context("diff_ids")?
                .iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect(),
            platform: "linux/amd64".into(),
        },
    );
    // Schema 1: the layer tar (a single `issue` file) and a manifest with fsLayers and
    // v1Compatibility history, as `docker push` by Docker < 1.10 wrote them.
    let s1 = out.join("s1");
    fs::create_dir_all(&s1)?;
    let layer = tar(&[file("issue", host_file("/etc/issue", "Debian\n"))])?;
    let layer_digest = crate::blob::digest(&layer);
    fs::write(s1.join(hex(&layer_digest)), &layer)?;
    let v1 = json!({"id": crate::blob::sha256_hex(b"s1"), "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]}});
    let manifest = json!({
        "schemaVersion": 1,
        "name": "conformance/s1",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": layer_digest}],
        "history": [{"v1Compatibility": serde_json::to_string(&v1)?}],
    });
    fs::write(
        s1.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    fs::write(s1.join("version"), "Directory Transport Version: 1.1\n")?;
    Ok(())
}

/// dive's test image: 14 layers on busybox that copy, overwrite, move, chmod and delete files,
/// made with umoci (which writes whiteouts for deletions), then `docker save`d by skopeo.
fn dive_like(root: &Path, dir: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let out = dir.join("dive-like");
    let builder = Builder::new(&out)?;
    let rootfs = builder.rootfs();
    builder.put("bin/busybox", Path::new("/bin/busybox"), 0o755)?;
    builder.link("bin/sh", "busybox")?;
    builder.link("bin/cp", "busybox")?;
    builder.write("etc/passwd", PASSWD.as_bytes(), 0o644)?;
    builder.dir("root", 0o700)?;
    builder.dir("tmp", 0o1777)?;
    builder.commit("ADD busybox-static /")?;
    let readme = fs::read(root.join("README.md"))?;
    let somefile = &readme[..readme.len().min(6405)];
    builder.write("somefile.txt", somefile, 0o644)?;
    builder.commit("ADD README.md /somefile.txt")?;
    builder.dir("root/example/really/nested", 0o755)?;
    builder.commit("RUN mkdir -p /root/example/really/nested")?;
    builder.write("root/example/somefile1.txt", somefile, 0o644)?;
    builder.commit("RUN cp /somefile.txt /root/example/somefile1.txt")?;
    fs::set_permissions(
        rootfs.join("root/example/somefile1.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )?;
    builder.commit("RUN chmod 444 /root/example/somefile1.txt")?;
    builder.write("root/example/somefile2.txt", somefile, 0o644)?;
    builder.commit("RUN cp /somefile.txt /root/example/somefile2.txt")?;
    builder.write("root/example/somefile3.txt", somefile, 0o644)?;
    builder.commit("RUN cp /somefile.txt /root/example/somefile3.txt")?;
    fs::rename(
        rootfs.join("root/example/somefile3.txt"),
        rootfs.join("root/saved.txt"),
    )?;
    builder.commit("RUN mv /root/example/somefile3.txt /root/saved.txt")?;
    builder.write("root/.saved.txt", somefile, 0o644)?;
    builder.commit("RUN cp /root/saved.txt /root/.saved.txt")?;
    fs::remove_dir_all(rootfs.join("root/example"))?;
    builder.commit("RUN rm -rf /root/example/")?;
    builder.write("root/.data/tag", b"conformance\n", 0o644)?;
    builder.write(
        "root/.data/os-release",
        &host_file("/etc/os-release", ""),
        0o644,
    )?;
    builder.commit("ADD .data/ /root/.data/")?;
    builder.write("tmp/saved.again1.txt", somefile, 0o644)?;
    builder.commit("RUN cp /root/saved.txt /tmp/saved.again1.txt")?;
    builder.write("root/.data/saved.again2.txt", somefile, 0o644)?;
    builder.commit("RUN cp /root/saved.txt /root/.data/saved.again2.txt")?;
    fs::set_permissions(
        rootfs.join("root/saved.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    builder.commit("RUN chmod +x /root/saved.txt")?;
    let layout = builder.finish()?;
    expect.add("dive-like", &layout_facts(&layout, "latest")?);
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!(
            "docker-archive:{}:conformance/dive-like:latest",
            out.join("docker.tar").display()
        ),
        &[],
    )
}

/// go-containerregistry's mutate fixtures: whiteout of a file, of a directory recreated
/// later, and a regular file replaced by a symlink; layers hand-written with `./` names
/// (as `docker build` writes them), added with umoci, saved by skopeo.
fn whiteouts(dir: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let cases: [(&str, Vec<Vec<Entry>>); 3] = [
        (
            "whiteout-file",
            vec![
                vec![
                    file("./foo.txt", "foo\n"),
                    file("./bar.txt", "bar\n"),
                    file("./etc/hostname", "conformance\n"),
                ],
                vec![file("./.wh.foo.txt", "")],
            ],
        ),
        (
            "whiteout-dir",
            vec![
                vec![dir_entry("./a/"), file("./a/foo", "foo\n")],
                vec![file("./b.txt", "b\n")],
                vec![file("./.wh.a", "")],
                vec![dir_entry("./a/"), file("./a/baz", "baz\n")],
            ],
        ),
        (
            "file-to-symlink",
            vec![
                vec![file("./foo.txt", "foo\n"), file("./bar.txt", "bar\n")],
                vec![symlink_entry("./foo.txt", "bar.txt")],
            ],
        ),
    ];
    for (name, layers) in cases {
        let out = dir.join(name);
        let builder = Builder::new(&out)?;
        for (i, entries) in layers.iter().enumerate() {
            let path = out.join(format!("layer-{i}.tar"));
            fs::write(&path, tar(entries)?)?;
            builder.raw_layer(&path, &format!("COPY layer-{i} /"))?;
            fs::remove_file(&path)?;
        }
        let layout = builder.finish()?;
        expect.add(name, &layout_facts(&layout, "latest")?);
        skopeo_copy(
            &format!("oci:{}:latest", layout.display()),
            &format!(
                "docker-archive:{}:conformance/{name}:latest",
                out.join("docker.tar").display()
            ),
            &[],
        )?;
    }
    Ok(())
}

/// An eStargz layer: one gzip member per tar entry, then `stargz.index.json` (the TOC) and
/// the tar end in a member of their own, then the footer (an empty member whose extra field
/// points at the TOC), as buildx `--output type=oci,compression=estargz` writes it.
fn estargz(entries: &[Entry]) -> anyhow::Result<Layer> {
    let mut blob = Vec::new();
    let mut plain = Vec::new();
    let mut toc_entries = Vec::new();
    let landmark = file(".no.prefetch.landmark", vec![0xf]);
    for entry in std::iter::once(&landmark).chain(entries) {
        let bytes = member(entry)?;
        let (name, kind, size) = match entry {
            Entry::File(n, d, _) => (n.as_str(), "reg", d.len()),
            Entry::Dir(n) => (n.as_str(), "dir", 0),
            Entry::Symlink(n, _) => (n.as_str(), "symlink", 0),
        };
        toc_entries.push(json!({"name": name, "type": kind, "size": size, "offset": blob.len()}));
        plain.extend_from_slice(&bytes);
        blob.extend(crate::blob::gzip(&bytes, flate2::Compression::default())?);
    }
    let toc = serde_json::to_vec(&json!({"version": 1, "entries": toc_entries}))?;
    let toc_offset = blob.len();
    let mut last = member(&file("stargz.index.json", toc))?;
    last.extend_from_slice(&[0u8; 1024]);
    plain.extend_from_slice(&last);
    let toc_member = crate::blob::gzip(&last, flate2::Compression::default())?;
    let toc_digest = crate::blob::digest(&toc_member);
    blob.extend(toc_member);
    let mut extra = b"SG".to_vec();
    extra.extend_from_slice(&22u16.to_le_bytes());
    extra.extend_from_slice(format!("{toc_offset:016x}STARGZ").as_bytes());
    let mut footer = flate2::GzBuilder::new()
        .extra(extra)
        .write(Vec::new(), flate2::Compression::default());
    footer.write_all(b"")?;
    blob.extend(footer.finish()?);
    Ok(Layer {
        diff_id: crate::blob::digest(&plain),
        blob,
        media_type: OCI_LAYER_GZIP.into(),
        annotations: Some(json!({
            "containerd.io/snapshot/stargz/toc.digest": toc_digest,
            "io.containers.estargz.uncompressed-size": plain.len().to_string(),
        })),
    })
}

/// buildx `--output type=oci` tars (dive's test-oci-*-image.tar): an OCI layout in a tar, no
/// manifest.json, index.json naming one linux/amd64 manifest; layers uncompressed, gzip,
/// zstd and eStargz. The layout directories stay beside the tars for umoci.
fn buildx_archives(dir: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let out = dir.join("buildx");
    let content = |variant: &str| -> Vec<Vec<Entry>> {
        vec![
            etc_files(&format!("buildx-{variant}")),
            vec![
                dir_entry("app/"),
                file("app/README", format!("built by buildx ({variant})\n")),
                symlink_entry("app/os-release", "../etc/os-release"),
            ],
        ]
    };
    for variant in ["uncompressed", "gzip", "zstd", "estargz"] {
        let layers = content(variant)
            .iter()
            .map(|entries| match variant {
                "uncompressed" => Layer::plain(entries),
                "gzip" => Layer::gzip(entries),
                "zstd" => Layer::zstd(entries),
                _ => estargz(entries),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let layout_dir = out.join(variant);
        let layout = Layout::new(&layout_dir)?;
        let (descriptor, facts) = layout.image(&Image::new("linux/amd64", layers))?;
        layout.top(&[tagged(&descriptor, "latest")])?;
        expect.add(&format!("buildx/{variant}"), &facts);
        fs::write(out.join(format!("{variant}.tar")), tar_dir(&layout_dir)?)?;
    }
    Ok(())
}

/// docker archives no tool writes on demand.
fn hand_docker_archives(dir: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let out = dir.join("docker");
    fs::create_dir_all(&out)?;

    // kaniko: the config member literally named `sha256:<hex>`, gzip layers `<hex>.tar.gz`.
    let parts = Parts::new(
        "linux/amd64",
        vec![
            tar(&etc_files("kaniko"))?,
            tar(&[file("app/kaniko.txt", "built by kaniko\n")])?,
        ],
    )?;
    let config_name = crate::blob::digest(&parts.config);
    let mut entries = vec![file(&config_name, parts.config.clone())];
    let mut names = Vec::new();
    for layer in &parts.layers {
        let compressed = crate::blob::gzip(layer, flate2::Compression::default())?;
        let name = format!("{}.tar.gz", crate::blob::sha256_hex(&compressed));
        entries.push(file(&name, compressed));
        names.push(name);
    }
    entries.push(file(
        "manifest.json",
        serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": ["conformance/kaniko:latest"], "Layers": names}]))?,
    ));
    fs::write(out.join("kaniko.tar"), tar(&entries)?)?;
    expect.add("docker/kaniko", &parts.facts());

    // Config members named like a digest that is not their content's.
    let parts = Parts::small("misnamed")?;
    let wrong = crate::blob::sha256_hex(b"not the config");
    for (file_name, config_name) in [
        ("config-misnamed-hex.tar", format!("{wrong}.json")),
        ("config-misnamed-sha256.tar", format!("sha256:{wrong}")),
    ] {
        let layer_name = format!("{}/layer.tar", crate::blob::sha256_hex(&parts.layers[0]));
        let entries = vec![
            file(&config_name, parts.config.clone()),
            file(&layer_name, parts.layers[0].clone()),
            file(
                "manifest.json",
                serde_json::to_vec(
                    &json!([{"Config": config_name, "RepoTags": ["conformance/misnamed:latest"], "Layers": [layer_name]}]),
                )?,
            ),
        ];
        fs::write(out.join(file_name), tar(&entries)?)?;
    }
    expect.add("docker/config-misnamed", &parts.facts());

    // Docker 25+ `docker save IMAGE-ID`: an OCI layout with `"manifests": null`, and
    // manifest.json pointing into blobs/sha256 with RepoTags null; an arm64 image.
    let layout_dir = out.join("docker25-build");
    let layout = Layout::new(&layout_dir)?;
    let mut image = Image::new("linux/arm64", vec![Layer::plain(&etc_files("docker25"))?]);
    image.descriptor_platform = false;
    let (descriptor, facts) = layout.image(&image)?;
    let manifest: Value = serde_json::from_slice(&fs::read(
        layout_dir
            .join("blobs/sha256")
            .join(hex(descriptor["digest"].as_str().context("digest")?)),
    )?)?;
    let blob_name = |d: &Value| format!("blobs/sha256/{}", hex(d["digest"].as_str().unwrap_or("")));
    fs::write(
        layout_dir.join("manifest.json"),
        serde_json::to_vec(&json!([{
            "Config": blob_name(&manifest["config"]),
            "RepoTags": null,
            "Layers": manifest["layers"].as_array().context("layers")?.iter().map(blob_name).collect::<Vec<_>>(),
        }]))?,
    )?;
    fs::write(
        layout_dir.join("index.json"),
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#,
    )?;
    fs::write(
        out.join("docker25-null-manifests.tar"),
        tar_dir(&layout_dir)?,
    )?;
    fs::remove_dir_all(&layout_dir)?;
    expect.add(
        "docker/docker25-null-manifests",
        &Facts {
            manifest_digest: None,
            ..facts
        },
    );

    // go-containerregistry's test_link: the second layer member is a symlink to the first's.
    let layer = tar(&etc_files("link"))?;
    let parts = Parts::new("linux/amd64", vec![layer.clone(), layer.clone()])?;
    let config_name = format!("{}.json", crate::blob::sha256_hex(&parts.config));
    let first = crate::blob::sha256_hex(b"link-layer-0");
    let second = crate::blob::sha256_hex(b"link-layer-1");
    let entries = vec![
        file(&config_name, parts.config.clone()),
        dir_entry(&format!("{first}/")),
        file(&format!("{first}/layer.tar"), layer),
        dir_entry(&format!("{second}/")),
        symlink_entry(
            &format!("{second}/layer.tar"),
            &format!("../{first}/layer.tar"),
        ),
        file(
            "manifest.json",
            serde_json::to_vec(&json!([{
                "Config": config_name,
                "RepoTags": ["bazel/v1/tarball:test_image_3"],
                "Layers": [format!("{first}/layer.tar"), format!("{second}/layer.tar")],
            }]))?,
        ),
    ];
    fs::write(out.join("layer-symlink.tar"), tar(&entries)?)?;
    expect.add("docker/layer-symlink", &parts.facts());

    // Two images in one archive (test_bundle.tar), and skopeo's docker-two-images.tar.xz.
    let one = Parts::small("test_image_1")?;
    let two = Parts::small("test_image_2")?;
    docker_archive(
        &out.join("bundle.tar"),
        &[
            (&one, &["test_image_1:latest"]),
            (&two, &["test_image_2:latest"]),
        ],
    )?;
    expect.add("docker/bundle/test_image_1", &one.facts());
    expect.add("docker/bundle/test_image_2", &two.facts());
    let empty = Parts::new("linux/amd64", vec![tar(&[])?])?;
    let different = Parts::new(
        "linux/amd64",
        vec![tar(&[])?, tar(&[file("different", "but different\n")])?],
    )?;
    let two_images = out.join("two-images.tar");
    docker_archive(
        &two_images,
        &[
            (&empty, &["example.com/empty:latest"]),
            (&different, &["example.com/empty/but:different"]),
        ],
    )?;
    fs::write(
        out.join("two-images.tar.xz"),
        crate::blob::pipe_through("xz", &["-c", "-T1"], &fs::read(&two_images)?)?,
    )?;
    fs::remove_file(&two_images)?;
    expect.add("docker/two-images/empty", &empty.facts());
    expect.add("docker/two-images/different", &different.facts());

    // Config rootfs.diff_ids empty, one layer; one diff_id, no layer.
    let layer = tar(&etc_files("diff-ids"))?;
    let layer_name = format!("{}/layer.tar", crate::blob::sha256_hex(&layer));
    for (file_name, diff_ids, layers) in [
        ("diff-ids-empty.tar", vec![], vec![layer_name.clone()]),
        (
            "diff-ids-more-than-layers.tar",
            vec![crate::blob::digest(&layer)],
            vec![],
        ),
    ] {
        let config = serde_json::to_vec(&config_json("linux/amd64", &diff_ids, &[]))?;
        let config_name = format!("{}.json", crate::blob::sha256_hex(&config));
        let mut entries = vec![file(&config_name, config)];
        if !layers.is_empty() {
            entries.push(file(&layer_name, layer.clone()));
        }
        entries.push(file(
            "manifest.json",
            serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": ["conformance/diff-ids:latest"], "Layers": layers}]))?,
        ));
        fs::write(out.join(file_name), tar(&entries)?)?;
    }

    // manifest.json and config.json symlinked to each other.
    fs::write(
        out.join("symlink-cycle.tar"),
        tar(&[
            symlink_entry("manifest.json", "config.json"),
            symlink_entry("config.json", "manifest.json"),
        ])?,
    )?;

    // Before Docker 1.10: `repositories`, `<id>/json`, `<id>/layer.tar`, no manifest.json.
    let layer = tar(&etc_files("legacy"))?;
    let id = crate::blob::sha256_hex(b"legacy-image");
    let v1 = json!({"id": id, "created": "2016-01-01T00:00:00Z", "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]}});
    fs::write(
        out.join("legacy-v1.tar"),
        tar(&[
            dir_entry(&format!("{id}/")),
            file(&format!("{id}/VERSION"), "1.0"),
            file(&format!("{id}/json"), serde_json::to_vec(&v1)?),
            file(&format!("{id}/layer.tar"), layer),
            file(
                "repositories",
                serde_json::to_vec(&json!({"conformance/legacy": {"latest": id}}))?,
            ),
        ])?,
    )?;
    Ok(())
}

/// manifest.json documents that must be refused: `null`, `[]`, an empty file, one entry with
/// every field empty, and `./manifest.json` holding `[]`.
fn broken_manifest_json(dir: &Path) -> anyhow::Result<()> {
    let out = dir.join("manifest-json");
    fs::create_dir_all(&out)?;
    for (file_name, member_name, content) in [
        ("null.tar", "manifest.json", &b"null"[..]),
        ("empty-list.tar", "manifest.json", b"[]"),
        ("empty-file.tar", "manifest.json", b""),
        (
            "blank-entry.tar",
            "manifest.json",
            br#"[{"Config":"","RepoTags":null,"Layers":null}]"#,
        ),
        ("prefixed-empty-list.tar", "./manifest.json", b"[]"),
    ] {
        fs::write(out.join(file_name), tar(&[file(member_name, content)])?)?;
    }
    Ok(())
}

/// A layer tar ending early: right after the last entry's data (no padding, no end blocks),
/// inside the padding, inside the data, inside a header. The first two are the end of the
/// archive to every tar reader that a runtime uses; the last two are truncations.
fn layer_endings(dir: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let layout = Layout::new(&dir.join("layer-endings"))?;
    let first = member(&file("etc/first", "the first entry\n"))?;
    let motd = b"Welcome to conformance\n";
    let mut full = first.clone();
    full.extend_from_slice(&header("etc/motd", b'0', motd.len() as u64, 0o644, "")?);
    full.extend_from_slice(motd);
    let unpadded = full.clone();
    let mut in_padding = full.clone();
    in_padding.extend_from_slice(&[0u8; 100]);
    let truncated_data = full[..full.len() - 10].to_vec();
    let mut truncated_header = first.clone();
    truncated_header.extend_from_slice(&full[first.len()..first.len() + 300]);
    let base = Layer::gzip(&etc_files("layer-endings"))?;
    let mut tops = Vec::new();
    for (tag, layer) in [
        ("unpadded", Layer::raw(unpadded.clone())?),
        ("in-padding", Layer::raw(in_padding)?),
        ("unpadded-gzip", {
            let mut l = Layer::raw(unpadded)?;
            l.blob = crate::blob::gzip(&l.blob, flate2::Compression::default())?;
            l.media(OCI_LAYER_GZIP)
        }),
        ("truncated-data", Layer::raw(truncated_data)?),
        ("truncated-header", Layer::raw(truncated_header)?),
    ] {
        let (descriptor, facts) =
            layout.image(&Image::new("linux/amd64", vec![base.clone(), layer]))?;
        expect.add(&format!("layer-endings:{tag}"), &facts);
        tops.push(tagged(&without_platform(&descriptor), tag));
    }
    layout.top(&tops)
}

/// OCI layouts of every shape the peers test (each a directory under `oci/`).
fn oci_shapes(dir: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let out = dir.join("oci");

    // The only image, untagged (test_index_one_image, stereoscope valid_oci_dir).
    let layout = Layout::new(&out.join("one-image"))?;
    let (d, facts) = layout.image(&Image::small("linux/amd64", "one-image")?)?;
    layout.top(&[without_platform(&d)])?;
    expect.add("oci/one-image", &facts);

    // A layer whose media type is `application/tar+gzip` (test_index_media_type).
    let layout = Layout::new(&out.join("tar-gzip-media-type"))?;
    let layer = Layer::gzip(&etc_files("tar-gzip"))?.media("application/tar+gzip");
    let (d, facts) = layout.image(&Image::new("linux/amd64", vec![layer]))?;
    layout.top(&[tagged(&without_platform(&d), "latest")])?;
    expect.add("oci/tar-gzip-media-type", &facts);

    // test_index: an index (by digest) over a docker schema 2 manifest that the index's
    // descriptor calls an OCI manifest, and an image beside it.
    let layout = Layout::new(&out.join("digests"))?;
    let mut image = Image::small("linux/amd64", "docker-in-oci")?;
    image.manifest_type = DOCKER_MANIFEST;
    image.config_type = DOCKER_CONFIG;
    image.layers = image
        .layers
        .into_iter()
        .map(|l| l.media(DOCKER_LAYER_GZIP))
        .collect();
    let (mut d, facts) = layout.image(&image)?;
    d["mediaType"] = json!(OCI_MANIFEST);
    expect.add("oci/digests/docker-manifest", &facts);
    let (arm, arm_facts) = layout.image(&Image::small("linux/arm64", "digests-arm64")?)?;
    expect.add("oci/digests/arm64", &arm_facts);
    let index = layout.index(OCI_INDEX, &[d.clone(), arm])?;
    let (other, other_facts) = layout.image(&Image::small("linux/amd64", "digests-other")?)?;
    expect.add("oci/digests/other", &other_facts);
    layout.top(&[index.clone(), without_platform(&other)])?;
    let mut index_facts = facts.clone();
    index_facts.manifest_digest = index["digest"].as_str().map(str::to_owned);
    expect.add("oci/digests/index", &index_facts);

    // An index.json only, naming a descriptor of an unknown media type (test_gc_image_unknown_mediatype).
    let layout = Layout::bare(&out.join("unknown-media-type"))?;
    fs::remove_dir_all(layout.dir.join("blobs"))?;
    layout.top(&[json!({
        "mediaType": "application/vnd.oci.descriptor.v1+json",
        "digest": crate::blob::digest(b"a descriptor"),
        "size": 12,
    })])?;

    // index.json only, no blobs, no oci-layout (containers/image oci/layout/fixtures/manifest).
    let layout = Layout::bare(&out.join("index-only"))?;
    fs::remove_dir_all(layout.dir.join("blobs"))?;
    layout.top(&[json!({
        "mediaType": OCI_MANIFEST,
        "digest": crate::blob::digest(b"a manifest that is not here"),
        "size": 496,
        "annotations": {REF_NAME: "v0.1.1"},
    })])?;

    // Two untagged manifests (two_images_manifest).
    let layout = Layout::new(&out.join("two-untagged"))?;
    let (a, fa) = layout.image(&Image::small("linux/amd64", "untagged-a")?)?;
    let (b, fb) = layout.image(&Image::small("linux/amd64", "untagged-b")?)?;
    layout.top(&[without_platform(&a), without_platform(&b)])?;
    expect.add("oci/two-untagged/a", &fa);
    expect.add("oci/two-untagged/b", &fb);

    // name_lookups: a = OCI index, b = OCI manifest, c = docker manifest list, d = docker
    // schema 2 manifest, invalid-mime = an unknown media type.
    let layout = Layout::new(&out.join("name-lookups"))?;
    let (amd, amd_facts) = layout.image(&Image::small("linux/amd64", "lookup-a")?)?;
    let a = layout.index(OCI_INDEX, &[amd])?;
    expect.add("oci/name-lookups:a", &amd_facts);
    let (b, fb) = layout.image(&Image::small("linux/amd64", "lookup-b")?)?;
    expect.add("oci/name-lookups:b", &fb);
    let docker_image = |tag: &str| -> anyhow::Result<(Value, Facts)> {
        let mut image = Image::small("linux/amd64", tag)?;
        image.manifest_type = DOCKER_MANIFEST;
        image.config_type = DOCKER_CONFIG;
        image.layers = image
            .layers
            .into_iter()
            .map(|l| l.media(DOCKER_LAYER_GZIP))
            .collect();
        layout.image(&image)
    };
    let (c_child, fc) = docker_image("lookup-c")?;
    let c = layout.index(DOCKER_LIST, &[c_child])?;
    expect.add("oci/name-lookups:c", &fc);
    let (d, fd) = docker_image("lookup-d")?;
    expect.add("oci/name-lookups:d", &fd);
    let invalid = json!({
        "mediaType": "application/x-completely-unknown",
        "digest": crate::blob::digest(b"eeee"),
        "size": 5,
    });
    layout.top(&[
        tagged(&a, "a"),
        tagged(&without_platform(&b), "b"),
        tagged(&c, "c"),
        tagged(&without_platform(&d), "d"),
        tagged(&invalid, "invalid-mime"),
    ])?;

    // delete_image_multiple_images: several tags, two naming the same multi-platform index
    // (linux/amd64 + linux/386), a nested index, plain images.
    let layout = Layout::new(&out.join("multiple-images"))?;
    let (amd, amd_facts) = layout.image(&Image::small("linux/amd64", "3.18.3-amd64")?)?;
    let (i386, i386_facts) = layout.image(&Image::small("linux/386", "3.18.3-386")?)?;
    let latest = layout.index(OCI_INDEX, &[amd, i386])?;
    expect.add("oci/multiple-images:latest", &amd_facts);
    expect.add("oci/multiple-images:latest/386", &i386_facts);
    let (old, old_facts) = layout.image(&Image::small("linux/amd64", "3.16.7")?)?;
    let inner = layout.index(OCI_INDEX, &[old])?;
    let nested = layout.index(OCI_INDEX, &[inner])?;
    expect.add("oci/multiple-images:3.16.7", &old_facts);
    let (v3175, f3175) = layout.image(&Image::small("linux/amd64", "3.17.5")?)?;
    expect.add("oci/multiple-images:3.17.5", &f3175);
    let (v100, f100) = layout.image(&Image::small("linux/amd64", "1.0.0")?)?;
    expect.add("oci/multiple-images:1.0.0", &f100);
    layout.top(&[
        tagged(&latest, "latest"),
        tagged(&latest, "3.18.3"),
        tagged(&without_platform(&v3175), "3.17.5"),
        tagged(&nested, "3.16.7"),
        tagged(&without_platform(&v100), "1.0.0"),
    ])?;

    // delete_image_shared_blobs_dir: the manifest and layer in ./shared_blobs, only the
    // config in ./blobs (containers/image's --shared-blob-dir).
    let shared = out.join("shared-blobs-dir");
    let layout = Layout::new(&shared)?;
    let (d, _) = layout.image(&Image::small("linux/amd64", "shared")?)?;
    layout.top(&[tagged(&without_platform(&d), "latest")])?;
    let manifest: Value = serde_json::from_slice(&fs::read(
        shared
            .join("blobs/sha256")
            .join(hex(d["digest"].as_str().context("digest")?)),
    )?)?;
    fs::create_dir_all(shared.join("shared_blobs/sha256"))?;
    for moved in [
        d["digest"].as_str().context("digest")?,
        manifest["layers"][0]["digest"]
            .as_str()
            .context("layer digest")?,
    ] {
        fs::rename(
            shared.join("blobs/sha256").join(hex(moved)),
            shared.join("shared_blobs/sha256").join(hex(moved)),
        )?;
    }

    // delete_image_two_identical_references: one ref.name, two digests.
    let layout = Layout::new(&out.join("same-ref-two-digests"))?;
    let (a, fa) = layout.image(&Image::small("linux/amd64", "same-ref-a")?)?;
    let (b, fb) = layout.image(&Image::small("linux/amd64", "same-ref-b")?)?;
    layout.top(&[
        tagged(&without_platform(&a), "1.0.0"),
        tagged(&without_platform(&b), "1.0.0"),
    ])?;
    expect.add("oci/same-ref-two-digests/a", &fa);
    expect.add("oci/same-ref-two-digests/b", &fb);

    // Multi-platform (multiplatform_oci_dir): amd64, arm64, arm/v7 in one index, tagged.
    let layout = Layout::new(&out.join("multiplatform"))?;
    let mut children = Vec::new();
    for platform in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
        let (d, facts) = layout.image(&Image::small(platform, platform)?)?;
        expect.add(&format!("oci/multiplatform:{platform}"), &facts);
        children.push(d);
    }
    let index = layout.index(OCI_INDEX, &children)?;
    layout.top(&[tagged(&index, "latest")])?;

    // Single-platform arm64 (valid_oci_dir, hello-world-v25): the only image.
    let layout = Layout::new(&out.join("single-arm64"))?;
    let (d, facts) = layout.image(&Image::small("linux/arm64", "single-arm64")?)?;
    layout.top(&[tagged(&d, "latest")])?;
    expect.add("oci/single-arm64", &facts);

    // index.json: no manifests, an empty file, `foobar`, a directory, `{}`.
    for (name, content) in [
        (
            "no-manifests",
            &br#"{"schemaVersion":2,"manifests":[]}"#[..],
        ),
        ("index-empty-file", b""),
        ("index-foobar", b"foobar"),
        ("index-empty-object", b"{}"),
    ] {
        let layout = Layout::new(&out.join(name))?;
        let _ = layout.image(&Image::small("linux/amd64", name)?)?;
        fs::write(layout.dir.join("index.json"), content)?;
    }
    let layout = Layout::new(&out.join("index-json-dir"))?;
    let _ = layout.image(&Image::small("linux/amd64", "index-json-dir")?)?;
    fs::create_dir_all(layout.dir.join("index.json"))?;
    fs::write(layout.dir.join("index.json/.keep"), b"")?;

    // A 0-byte manifest blob, no oci-layout file (stereoscope valid_manifest).
    let layout = Layout::bare(&out.join("manifest-empty-blob"))?;
    let empty = layout.put(b"")?;
    layout.top(&[json!({"mediaType": OCI_MANIFEST, "digest": empty, "size": 0})])?;

    // test_invalid_oci_image: a descriptor of media type application/badmedia+json whose
    // blob is absent.
    let layout = Layout::new(&out.join("bad-media"))?;
    layout.top(&[json!({
        "mediaType": "application/badmedia+json",
        "digest": format!("sha256:bad74487{}", "0".repeat(56)),
        "size": 100,
    })])?;

    // trivy test_image_tag.oci: one image tagged 0.0.1.
    let layout = Layout::new(&out.join("one-tag"))?;
    let (d, facts) = layout.image(&Image::small("linux/amd64", "0.0.1")?)?;
    layout.top(&[tagged(&without_platform(&d), "0.0.1")])?;
    expect.add("oci/one-tag", &facts);

    // trivy multi: index.json -> a tagged nested index -> linux/amd64 and linux/arm/v7.
    let layout = Layout::new(&out.join("tagged-nested-index"))?;
    let (amd, amd_facts) = layout.image(&Image::small("linux/amd64", "tg11-amd64")?)?;
    let (arm, arm_facts) = layout.image(&Image::small("linux/arm/v7", "tg11-arm")?)?;
    let index = layout.index(OCI_INDEX, &[amd, arm])?;
    layout.top(&[tagged(&index, "tg11")])?;
    expect.add("oci/tagged-nested-index:tg11", &amd_facts);
    expect.add("oci/tagged-nested-index:tg11/arm", &arm_facts);

    // regclient's testrepo: an index (v1), images under several tags (v2, v3, stable),
    // artifacts (an empty config, a Helm chart, a manifest with artifactType), an index
    // mixing an image and an SBOM artifact, a looping index and indexes nested 10 deep.
    artifacts(&out.join("artifacts"), expect)?;
    Ok(())
}

fn artifacts(dir: &Path, expect: &mut Expect) -> anyhow::Result<()> {
    let layout = Layout::new(dir)?;
    let (amd, amd_facts) = layout.image(&Image::small("linux/amd64", "v1-amd64")?)?;
    let (arm, _) = layout.image(&Image::small("linux/arm64", "v1-arm64")?)?;
    let v1 = layout.index(OCI_INDEX, &[amd, arm])?;
    expect.add("oci/artifacts:v1", &amd_facts);
    let (v2, v2_facts) = layout.image(&Image::small("linux/amd64", "v2")?)?;
    let v2 = without_platform(&v2);
    expect.add("oci/artifacts:v2", &v2_facts);

    // An artifact: empty config `{}` of the empty media type, one blob of its own.
    let note = Layer {
        blob: b"an attached note\n".to_vec(),
        diff_id: String::new(),
        media_type: "text/plain".into(),
        annotations: None,
    };
    let mut empty = Image::new("linux/amd64", vec![note.clone()]);
    empty.config_type = OCI_EMPTY;
    empty.config_bytes = Some(b"{}".to_vec());
    let (a1, _) = layout.image(&empty)?;
    // A Helm chart: its config is the chart's metadata.
    let chart = Layer {
        blob: crate::blob::gzip(
            &tar(&[file(
                "conformance/Chart.yaml",
                "apiVersion: v2\nname: conformance\nversion: 0.1.0\n",
            )])?,
            flate2::Compression::default(),
        )?,
        diff_id: String::new(),
        media_type: "application/vnd.cncf.helm.chart.content.v1.tar+gzip".into(),
        annotations: None,
    };
    let mut helm = Image::new("linux/amd64", vec![chart]);
    helm.config_type = HELM_CONFIG;
    helm.config_bytes =
        Some(br#"{"name":"conformance","version":"0.1.0","apiVersion":"v2"}"#.to_vec());
    let (helm, _) = layout.image(&helm)?;
    // artifactType set, with the empty config.
    let mut typed = Image::new("linux/amd64", vec![note.clone()]);
    typed.config_type = OCI_EMPTY;
    typed.config_bytes = Some(b"{}".to_vec());
    typed.artifact_type = Some("application/spdx+json");
    let (sbom, _) = layout.image(&typed)?;
    // An index holding an SBOM artifact first and then an image: the image is chosen.
    let (mixed_image, mixed_facts) = layout.image(&Image::small("linux/amd64", "mixed")?)?;
    let mixed = layout.index(OCI_INDEX, &[sbom.clone(), mixed_image])?;
    expect.add("oci/artifacts:mixed", &mixed_facts);

    // An index whose child is itself: stored under the digest it claims to have, which is
    // not its own (a true cycle cannot be content-addressed).
    let claimed = crate::blob::digest(b"the looping index");
    let looping = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": claimed, "size": 200}],
    }))?;
    fs::write(
        layout.dir.join("blobs/sha256").join(hex(&claimed)),
        &looping,
    )?;
    let looping = json!({"mediaType": OCI_INDEX, "digest": claimed, "size": looping.len()});

    // Indexes nested 3 and 10 deep over one image.
    let (deep_image, deep_facts) = layout.image(&Image::small("linux/amd64", "deep")?)?;
    let mut nested = deep_image;
    let mut deep3 = Value::Null;
    for level in 1..=10 {
        nested = layout.index(OCI_INDEX, &[nested])?;
        if level == 3 {
            deep3 = nested.clone();
        }
    }
    expect.add("oci/artifacts:deep3", &deep_facts);

    layout.top(&[
        tagged(&v1, "v1"),
        tagged(&v2, "v2"),
        tagged(&v2, "v3"),
        tagged(&v2, "stable"),
        tagged(&a1, "a1"),
        tagged(&helm, "helm"),
        tagged(&sbom, "sbom"),
        tagged(&mixed, "mixed"),
        tagged(&looping, "loop"),
        tagged(&deep3, "deep3"),
        tagged(&nested, "deep10"),
    ])
}

/// What is not an image: a rootfs tarball (buildx `type=tar`, dive's test-gzip-image.tar),
/// a ZIP file, a text file named `.tar` (oras-go's nontar.tar), binary garbage.
fn not_images(dir: &Path) -> anyhow::Result<()> {
    let out = dir.join("not-images");
    fs::create_dir_all(&out)?;
    fs::write(
        out.join("rootfs.tar"),
        tar(&[
            file("README.md", "# a rootfs export, not an image\n"),
            dir_entry("etc/"),
            file(
                "etc/os-release",
                host_file("/etc/os-release", "ID=debian\n"),
            ),
        ])?,
    )?;
    let zip = out.join("image.zip");
    run(Command::new("python3").args([
        "-c",
        "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('manifest.json', '[]')",
    ]).arg(&zip))?;
    fs::write(
        out.join("nontar.tar"),
        "This is not a tar archive, only text with a .tar name.\n".repeat(20),
    )?;
    let mut garbage: Vec<u8> = (0u8..=255).cycle().take(4096).collect();
    garbage[..4].copy_from_slice(b"\x1b[2J");
    fs::write(out.join("garbage.tar"), garbage)?;
    Ok(())
}
