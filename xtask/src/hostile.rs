//! The hostile-image suite (issue #14): images made to hurt an image scanner, written here as
//! raw tar headers, JSON and hand-made compressed streams, never taken from elsewhere.
//!
//! Every case is an image under the group directory plus an entry of `cases.json`: its name,
//! its class, the drydock arguments (the image path relative to the group directory), the exit
//! codes accepted, the words the message must hold (standard error for errors, standard output
//! for reports) and must not hold, and its limits (wall seconds, peak RSS in MiB).
//! `tests/it/hostile_suite.rs` runs them all; `docs/security.md` lists the classes.
//!
//! The big cases stay cheap to make: bombs are a few compressed chunks of zeros repeated (a
//! multi-member gzip, multi-stream bzip2 and xz, a zstd frame of RLE blocks written by hand),
//! the million-entry layer is streamed to disk through gzip, the 10,000 layers are a few bytes
//! each.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Terminal control sequences and a bidirectional override, as an attacker would put them in
/// any text an image carries: set the window title, clear the screen, colour, reverse.
const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\u{202e}gpj.exe\u{8}\r";

/// Limits of a small case: generous, so that a slow CI machine passes and a hang does not.
const SMALL_SECONDS: u64 = 30;
const SMALL_MIB: u64 = 200;

pub fn build(_root: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut cases = Cases {
        dir: dir.to_owned(),
        list: Vec::new(),
    };
    baseline(&mut cases)?;
    growth(&mut cases)?;
    bombs(&mut cases)?;
    escapes(&mut cases)?;
    kernel_refused(&mut cases)?;
    elf_fields(&mut cases)?;
    big_passwd(&mut cases)?;
    compression_lie(&mut cases)?;
    sparse(&mut cases)?;
    traversal(&mut cases)?;
    whiteouts(&mut cases)?;
    odd_entries(&mut cases)?;
    sizes(&mut cases)?;
    many(&mut cases)?;
    documents(&mut cases)?;
    certificates(&mut cases)?;
    let names: std::collections::BTreeSet<&str> =
        cases.list.iter().map(|c| c.name.as_str()).collect();
    if names.len() != cases.list.len() {
        bail!("two hostile cases share a name");
    }
    let list: Vec<Value> = cases.list.iter().map(Case::to_json).collect();
    fs::write(dir.join("cases.json"), serde_json::to_vec_pretty(&list)?)?;
    Ok(())
}

// ---- cases ---------------------------------------------------------------------------------

struct Cases {
    dir: PathBuf,
    list: Vec<Case>,
}

struct Case {
    name: String,
    class: &'static str,
    args: Vec<String>,
    image: String,
    exit: Vec<i32>,
    contains: Vec<String>,
    absent: Vec<String>,
    max_seconds: u64,
    max_rss_mib: u64,
}

impl Case {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "class": self.class,
            "args": self.args,
            "image": self.image,
            "exit": self.exit,
            "contains": self.contains,
            "absent": self.absent,
            "max_seconds": self.max_seconds,
            "max_rss_mib": self.max_rss_mib,
        })
    }
}

impl Cases {
    /// The directory of a new image, `class/name` under the group.
    fn image_dir(&self, class: &str, name: &str) -> PathBuf {
        self.dir.join(class).join(name)
    }

    /// A `drydock scan IMAGE` case (human output), exiting with one of `exit`.
    fn scan(&mut self, class: &'static str, name: &str, image: &Path, exit: &[i32]) -> &mut Case {
        self.run(class, name, &["scan"], image, &[], exit)
    }

    fn run(
        &mut self,
        class: &'static str,
        name: &str,
        before: &[&str],
        image: &Path,
        after: &[&str],
        exit: &[i32],
    ) -> &mut Case {
        let relative = image
            .strip_prefix(&self.dir)
            .unwrap_or(image)
            .to_string_lossy()
            .into_owned();
        let mut args: Vec<String> = before.iter().map(|s| (*s).to_owned()).collect();
        args.push(relative.clone());
        args.extend(after.iter().map(|s| (*s).to_owned()));
        self.list.push(Case {
            name: name.to_owned(),
            class,
            args,
            image: relative,
            exit: exit.to_vec(),
            contains: Vec::new(),
            absent: Vec::new(),
            max_seconds: SMALL_SECONDS,
            max_rss_mib: SMALL_MIB,
        });
        let last = self.list.len() - 1;
        &mut self.list[last]
    }
}

impl Case {
    fn says(&mut self, words: &[&str]) -> &mut Self {
        self.contains.extend(words.iter().map(|s| (*s).to_owned()));
        self
    }

    fn never_says(&mut self, words: &[&str]) -> &mut Self {
        self.absent.extend(words.iter().map(|s| (*s).to_owned()));
        self
    }

    fn limits(&mut self, seconds: u64, mib: u64) -> &mut Self {
        self.max_seconds = seconds;
        self.max_rss_mib = mib;
        self
    }
}

// ---- bytes ---------------------------------------------------------------------------------

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        let hex: String = self
            .hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (self.inner, format!("sha256:{hex}"), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---- tar, by hand --------------------------------------------------------------------------

/// One tar member, any bytes in any field.
#[derive(Clone)]
struct Ent {
    name: Vec<u8>,
    kind: u8,
    data: Vec<u8>,
    link: Vec<u8>,
    mode: u32,
    /// Replaces the size field (absurd, negative, garbage sizes).
    size_field: Option<[u8; 12]>,
    /// PAX records put before the member (`path`, `size`, sparse records…).
    pax: Vec<(String, Vec<u8>)>,
    /// Long names as GNU `L`/`K` members instead of PAX records.
    gnu_long: bool,
    dev: (u32, u32),
}

impl Ent {
    fn new(name: impl AsRef<[u8]>, kind: u8) -> Self {
        Self {
            name: name.as_ref().to_vec(),
            kind,
            data: Vec::new(),
            link: Vec::new(),
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            size_field: None,
            pax: Vec::new(),
            gnu_long: false,
            dev: (0, 0),
        }
    }

    fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

fn file(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> Ent {
    let mut e = Ent::new(name, b'0');
    e.data = data.into();
    e
}

fn exe(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> Ent {
    file(name, data).mode(0o755)
}

fn dir(name: impl AsRef<[u8]>) -> Ent {
    Ent::new(name, b'5')
}

fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Ent {
    let mut e = Ent::new(name, b'2').mode(0o777);
    e.link = target.as_ref().to_vec();
    e
}

fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Ent {
    let mut e = Ent::new(name, b'1');
    e.link = target.as_ref().to_vec();
    e
}

fn device(name: &str, kind: u8, major: u32, minor: u32) -> Ent {
    let mut e = Ent::new(name, kind);
    e.dev = (major, minor);
    e
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}", width = field.len() - 1);
    let text = &text.as_bytes()[text.len().saturating_sub(field.len() - 1)..];
    field[..text.len()].copy_from_slice(text);
    field[text.len()] = 0;
}

/// A raw header; names and links longer than the field are cut (the caller adds PAX or GNU
/// long-name members first).
fn header(name: &[u8], kind: u8, size: u64, mode: u32, link: &[u8], dev: (u32, u32)) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    octal(&mut h[329..337], u64::from(dev.0));
    octal(&mut h[337..345], u64::from(dev.1));
    checksum(&mut h);
    h
}

fn checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
}

fn pad(out: &mut impl Write, len: u64) -> io::Result<()> {
    let rest = (512 - len % 512) % 512;
    out.write_all(&vec![0u8; rest as usize])
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() + body > len {
        len += 1;
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

fn write_ent(out: &mut impl Write, e: &Ent) -> io::Result<()> {
    let mut pax = e.pax.clone();
    if e.gnu_long {
        for (kind, value) in [(b'L', &e.name), (b'K', &e.link)] {
            if value.len() > 100 {
                let mut data = value.clone();
                data.push(0);
                let h = header(
                    b"././@LongLink",
                    kind,
                    data.len() as u64,
                    0o644,
                    b"",
                    (0, 0),
                );
                out.write_all(&h)?;
                out.write_all(&data)?;
                pad(out, data.len() as u64)?;
            }
        }
    } else {
        if e.name.len() > 100 {
            pax.push(("path".into(), e.name.clone()));
        }
        if e.link.len() > 100 {
            pax.push(("linkpath".into(), e.link.clone()));
        }
    }
    if !pax.is_empty() {
        let data: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let h = header(b"PaxHeaders/x", b'x', data.len() as u64, 0o644, b"", (0, 0));
        out.write_all(&h)?;
        out.write_all(&data)?;
        pad(out, data.len() as u64)?;
    }
    let mut h = header(&e.name, e.kind, e.data.len() as u64, e.mode, &e.link, e.dev);
    if let Some(field) = e.size_field {
        h[124..136].copy_from_slice(&field);
        checksum(&mut h);
    }
    out.write_all(&h)?;
    out.write_all(&e.data)?;
    pad(out, e.data.len() as u64)
}

fn tar(entries: &[Ent]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        write_ent(&mut out, e)?;
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

// ---- ELF, by hand --------------------------------------------------------------------------

const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

/// A tiny x86-64 Linux executable that exits 0 (`mov eax, 60; xor edi, edi; syscall`):
/// static, or with a `PT_INTERP` naming `interp`. Offsets of its fields are those of the ELF
/// specification; the suite corrupts them one by one.
fn elf(interp: Option<&str>) -> Vec<u8> {
    let phnum: u16 = if interp.is_some() { 2 } else { 1 };
    let base = 0x40_0000u64;
    let mut body = Vec::new();
    let start = 64 + 56 * u64::from(phnum);
    let interp_off = start;
    if let Some(interp) = interp {
        body.extend_from_slice(interp.as_bytes());
        body.push(0);
    }
    let code_off = start + body.len() as u64;
    body.extend_from_slice(&[0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    let total = start + body.len() as u64;
    let mut out = Vec::new();
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // e_machine: x86-64
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&(base + code_off).to_le_bytes()); // e_entry
    out.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&phnum.to_le_bytes()); // e_phnum
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    let mut phdr = |kind: u32, flags: u32, offset: u64, size: u64, align: u64| {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(base + offset).to_le_bytes());
        out.extend_from_slice(&(base + offset).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&align.to_le_bytes());
    };
    if let Some(interp) = interp {
        phdr(3, 4, interp_off, interp.len() as u64 + 1, 1); // PT_INTERP
    }
    phdr(1, 5, 0, total, 0x1000); // PT_LOAD
    out.extend_from_slice(&body);
    out
}

fn patch(mut bytes: Vec<u8>, offset: usize, value: &[u8]) -> Vec<u8> {
    bytes[offset..offset + value.len()].copy_from_slice(value);
    bytes
}

// ---- images --------------------------------------------------------------------------------

/// A layer blob already in a layout's `blobs/`.
#[derive(Clone)]
struct Blob {
    digest: String,
    size: u64,
    media_type: String,
    diff_id: String,
}

/// An OCI layout being written by hand.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir.join("blobs/sha256"))?;
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn put(&self, bytes: &[u8]) -> anyhow::Result<String> {
        let digest = crate::blob::digest(bytes);
        fs::write(self.blob_path(&digest), bytes)?;
        Ok(digest)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Streams a blob to disk, then names it by its digest.
    fn put_stream(
        &self,
        write: impl FnOnce(&mut Hashing<BufWriter<fs::File>>) -> anyhow::Result<()>,
    ) -> anyhow::Result<(String, u64)> {
        let temp = self.dir.join("blobs/incoming");
        let mut out = Hashing::new(BufWriter::new(fs::File::create(&temp)?));
        write(&mut out)?;
        let (inner, digest, size) = out.finish();
        inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&temp, self.blob_path(&digest))?;
        Ok((digest, size))
    }

    fn layer(&self, entries: &[Ent]) -> anyhow::Result<Blob> {
        let plain = tar(entries)?;
        self.layer_bytes(
            &crate::blob::gzip(&plain, flate2::Compression::best())?,
            &crate::blob::digest(&plain),
            LAYER_GZIP,
        )
    }

    fn layer_bytes(&self, blob: &[u8], diff_id: &str, media_type: &str) -> anyhow::Result<Blob> {
        Ok(Blob {
            digest: self.put(blob)?,
            size: blob.len() as u64,
            media_type: media_type.to_owned(),
            diff_id: diff_id.to_owned(),
        })
    }

    /// Writes config, manifest and `index.json` (tag `latest`); returns the manifest bytes.
    fn image(&self, layers: &[Blob], config: &Value) -> anyhow::Result<()> {
        let config_bytes = serde_json::to_vec(config)?;
        let manifest = manifest_json(
            &json!({"mediaType": OCI_CONFIG, "digest": self.put(&config_bytes)?, "size": config_bytes.len()}),
            layers,
        );
        self.top_manifest(&serde_json::to_vec(&manifest)?, "latest")
    }

    fn top_manifest(&self, manifest: &[u8], tag: &str) -> anyhow::Result<()> {
        let descriptor = json!({
            "mediaType": OCI_MANIFEST,
            "digest": self.put(manifest)?,
            "size": manifest.len(),
            "annotations": {REF_NAME: tag},
        });
        self.index_json(&[descriptor])
    }

    fn index_json(&self, manifests: &[Value]) -> anyhow::Result<()> {
        crate::blob::write_index_json(&self.dir, manifests)
    }
}

fn manifest_json(config: &Value, layers: &[Blob]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
    })
}

/// A config running `/app`, as user 1000, with a history line per layer.
fn config(layers: &[Blob]) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "Entrypoint": ["/app"],
            "User": "1000",
        },
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": layers.iter().enumerate().map(|(i, _)| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("COPY layer-{i} /")})).collect::<Vec<_>>(),
    })
}

/// The files every image holds beside its case: `/tmp`, the user, a static `/app`.
fn base_files() -> Vec<Ent> {
    vec![
        dir("etc/"),
        file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        file("etc/group", "root:x:0:\napp:x:1000:\n"),
        dir("tmp/").mode(0o1777),
    ]
}

fn with_base(mut entries: Vec<Ent>, app: Option<Vec<u8>>) -> Vec<Ent> {
    let mut all = base_files();
    if let Some(app) = app {
        all.push(exe("app", app));
    }
    all.append(&mut entries);
    all
}

/// One layer: the base files, a static `/app` (unless `entries` brings its own), `entries`.
fn simple(dir: &Path, entries: Vec<Ent>) -> anyhow::Result<()> {
    let own_app = entries.iter().any(|e| e.name == b"app");
    let all = with_base(entries, (!own_app).then(|| elf(None)));
    let layout = Layout::new(dir)?;
    let layer = layout.layer(&all)?;
    layout.image(
        std::slice::from_ref(&layer),
        &config(std::slice::from_ref(&layer)),
    )
}

/// One layer, with a config changed by `edit`.
fn simple_with(dir: &Path, entries: Vec<Ent>, edit: impl FnOnce(&mut Value)) -> anyhow::Result<()> {
    let own_app = entries.iter().any(|e| e.name == b"app");
    let all = with_base(entries, (!own_app).then(|| elf(None)));
    let layout = Layout::new(dir)?;
    let layer = layout.layer(&all)?;
    let mut cfg = config(std::slice::from_ref(&layer));
    edit(&mut cfg);
    layout.image(&[layer], &cfg)
}

// ---- the classes ---------------------------------------------------------------------------

/// The clean image every hostile one is a variation of: it must pass.
fn baseline(cases: &mut Cases) -> anyhow::Result<()> {
    let path = cases.image_dir("baseline", "static");
    simple(&path, vec![])?;
    cases.scan("baseline", "baseline-static", &path, &[0]);
    let path = cases.image_dir("baseline", "dynamic");
    simple(
        &path,
        vec![
            dir("lib64/"),
            exe("lib64/ld-linux-x86-64.so.2", elf(None)),
            exe("app", elf(Some(LOADER))),
        ],
    )?;
    cases.scan("baseline", "baseline-dynamic", &path, &[0]);
    Ok(())
}

/// Work that grows faster than the input: include loops, link and shebang chains.
fn growth(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "growth";
    // /etc/ld.so.conf.d/ with 16 files, each including the directory 4 times: a naive reader
    // does (16·4)^depth work.
    let mut entries = vec![
        dir("lib64/"),
        exe("lib64/ld-linux-x86-64.so.2", elf(None)),
        exe("app", elf(Some(LOADER))),
        file("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n"),
        dir("etc/ld.so.conf.d/"),
    ];
    for i in 0..16 {
        entries.push(file(
            format!("etc/ld.so.conf.d/{i:02}.conf"),
            "include /etc/ld.so.conf.d/*.conf\n".repeat(4) + "/usr/local/lib\n",
        ));
    }
    for i in 0..200 {
        entries.push(file(format!("usr-{i}"), "x"));
    }
    let path = cases.image_dir(CLASS, "ldso-include-loop");
    simple(&path, entries)?;
    cases.scan(CLASS, "ldso-include-loop", &path, &[0, 1]);

    // ld.so.conf including itself, and a symlinked conf directory pointing at itself.
    let path = cases.image_dir(CLASS, "ldso-include-self");
    simple(
        &path,
        vec![
            dir("lib64/"),
            exe("lib64/ld-linux-x86-64.so.2", elf(None)),
            exe("app", elf(Some(LOADER))),
            file(
                "etc/ld.so.conf",
                "include /etc/ld.so.conf\ninclude /etc/ld.so.conf\ninclude /etc/loop/*\n",
            ),
            symlink("etc/loop", "loop"),
        ],
    )?;
    cases.scan(CLASS, "ldso-include-self", &path, &[0, 1]);

    // 20,000 symlinks in a chain, the entrypoint at its head; and 20,000 links into the chain.
    let mut entries = vec![dir("c/")];
    for i in 0..20_000 {
        entries.push(symlink(format!("c/l{i}"), format!("l{}", i + 1)));
    }
    entries.push(exe("c/l20000", elf(None)));
    for i in 0..20_000 {
        entries.push(symlink(format!("c/m{i}"), format!("l{i}")));
    }
    entries.push(symlink("app", "c/l0"));
    let path = cases.image_dir(CLASS, "symlink-chain");
    simple(&path, entries)?;
    cases
        .scan(CLASS, "symlink-chain", &path, &[1])
        .says(&["entrypoint"]);
    let path_tree = path.clone();
    cases.run(
        CLASS,
        "symlink-chain-tree",
        &["tree"],
        &path_tree,
        &[],
        &[0],
    );

    // Directory symlinks to `.` and `..` everywhere: a walker following them never ends.
    let mut entries = vec![dir("d/"), dir("etc/ssl/"), dir("etc/ssl/certs/")];
    for name in ["d/self", "d/up", "etc/ssl/certs/loop", "usr"] {
        entries.push(symlink(name, "."));
    }
    entries.push(symlink("d/root", "/"));
    entries.push(symlink("etc/ssl/certs/parent", ".."));
    entries.push(symlink(
        "etc/ssl/certs/ca-certificates.crt",
        "loop/ca-certificates.crt",
    ));
    let path = cases.image_dir(CLASS, "directory-loops");
    simple(&path, entries)?;
    cases.scan(CLASS, "directory-loops", &path, &[0, 1]);
    cases.run(
        CLASS,
        "directory-loops-inspect",
        &["inspect"],
        &path,
        &["/d/self/self/up/root/app"],
        &[0],
    );

    // Shebang chains: /app → #!/s/1 → … → #!/s/2000; and a loop of two.
    let mut entries = vec![dir("s/"), exe("app", "#!/s/1\n")];
    for i in 1..2000 {
        entries.push(exe(format!("s/{i}"), format!("#!/s/{}\n", i + 1)));
    }
    entries.push(exe("s/2000", elf(None)));
    let path = cases.image_dir(CLASS, "shebang-chain");
    simple(&path, entries)?;
    cases
        .scan(CLASS, "shebang-chain", &path, &[1])
        .says(&["/app"]);
    let path = cases.image_dir(CLASS, "shebang-loop");
    simple(&path, vec![exe("app", "#!/b\n"), exe("b", "#!/app\n")])?;
    cases
        .scan(CLASS, "shebang-loop", &path, &[1])
        .says(&["/app"]);

    // 100,000 hardlinks, each to the one before.
    let mut entries = vec![dir("h/"), file("h/0", "data")];
    for i in 1..100_000 {
        entries.push(hardlink(format!("h/{i}"), format!("h/{}", i - 1)));
    }
    let path = cases.image_dir(CLASS, "hardlink-chain");
    simple(&path, entries)?;
    cases.scan(CLASS, "hardlink-chain", &path, &[0]);
    Ok(())
}

/// Decompression bombs of every compression, as layers and as whole archives.
fn bombs(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "bomb";
    // What every bomb starts with: the tar header of one file of 100 GiB of zeros.
    let huge = 100u64 << 30;
    let head = header(b"zeros", b'0', huge, 0o644, b"", (0, 0));
    let chunk = vec![0u8; 64 << 20];
    // 64 chunks of 64 MiB: 4 GiB, twice what the allowance lets through.
    let repeat = 64;
    let streams: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "gzip",
            crate::blob::gzip(&head, flate2::Compression::best())?,
            crate::blob::gzip(&chunk, flate2::Compression::best())?,
        ),
        (
            "bzip2",
            crate::blob::pipe_through("bzip2", &["-9", "-c"], &head)?,
            crate::blob::pipe_through("bzip2", &["-9", "-c"], &chunk)?,
        ),
        (
            "xz",
            crate::blob::pipe_through("xz", &["-0", "-c"], &head)?,
            crate::blob::pipe_through("xz", &["-0", "-c"], &chunk)?,
        ),
    ];
    for (name, first, rest) in &streams {
        let path = cases.image_dir(CLASS, &format!("layer-{name}"));
        let layout = Layout::new(&path)?;
        let mut blob = first.clone();
        for _ in 0..repeat {
            blob.extend_from_slice(rest);
        }
        let media_type = if *name == "gzip" {
            LAYER_GZIP
        } else {
            LAYER_TAR
        };
        let layer =
            layout.layer_bytes(&blob, &crate::blob::digest(b"never reached"), media_type)?;
        layout.image(
            std::slice::from_ref(&layer),
            &config(std::slice::from_ref(&layer)),
        )?;
        cases
            .scan(CLASS, &format!("bomb-layer-{name}"), &path, &[4])
            .says(&["layer 0 (sha256:", "--max-expansion"])
            .limits(bomb_seconds(name), 200);
    }
    // zstd: 100 GiB of zeros in about 3 MB, RLE blocks written by hand.
    let path = cases.image_dir(CLASS, "layer-zstd");
    let layout = Layout::new(&path)?;
    let (blob_digest, size) = layout.put_stream(|out| zstd_zeros(out, &head, huge))?;
    let layer = Blob {
        digest: blob_digest,
        size,
        media_type: LAYER_ZSTD.into(),
        diff_id: crate::blob::digest(b"never reached"),
    };
    layout.image(
        std::slice::from_ref(&layer),
        &config(std::slice::from_ref(&layer)),
    )?;
    cases
        .scan(CLASS, "bomb-layer-zstd", &path, &[4])
        .says(&["layer 0 (sha256:", "--max-expansion"])
        .limits(60, 200);

    // Whole archives: a `docker save` tar compressed whole, whose layer member is a bomb.
    let inner_head = header(b"layer.tar", b'0', huge + 1024, 0o644, b"", (0, 0));
    let mut prefix = inner_head.to_vec();
    prefix.extend_from_slice(&head);
    let archive_streams: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "gz",
            crate::blob::gzip(&prefix, flate2::Compression::best())?,
            streams[0].2.clone(),
        ),
        (
            "bz2",
            crate::blob::pipe_through("bzip2", &["-9", "-c"], &prefix)?,
            streams[1].2.clone(),
        ),
        (
            "xz",
            crate::blob::pipe_through("xz", &["-0", "-c"], &prefix)?,
            streams[2].2.clone(),
        ),
    ];
    fs::create_dir_all(cases.dir.join(CLASS))?;
    for (ext, first, rest) in &archive_streams {
        let path = cases.dir.join(CLASS).join(format!("docker.tar.{ext}"));
        let mut out = BufWriter::new(fs::File::create(&path)?);
        out.write_all(first)?;
        for _ in 0..repeat {
            out.write_all(rest)?;
        }
        out.flush()?;
        cases
            .scan(CLASS, &format!("bomb-archive-{ext}"), &path, &[4])
            .says(&["--max-expansion"])
            .limits(bomb_seconds(ext), 200);
    }
    let path = cases.dir.join(CLASS).join("docker.tar.zst");
    let mut out = BufWriter::new(fs::File::create(&path)?);
    zstd_zeros(&mut out, &prefix, huge)?;
    out.flush()?;
    cases
        .scan(CLASS, "bomb-archive-zst", &path, &[4])
        .says(&["--max-expansion"])
        .limits(60, 200);
    Ok(())
}

/// Limits of a bomb: it is refused once 2 GiB are expanded; bzip2 and xz decode that more
/// slowly (about 40 s and 16 s in a debug build here, under strace).
fn bomb_seconds(compression: &str) -> u64 {
    match compression {
        "bzip2" | "bz2" => 150,
        "xz" => 90,
        _ => 60,
    }
}

/// A zstd frame: `head` as a raw block, then `zeros` zero bytes as RLE blocks of 128 KiB
/// (4 bytes each).
fn zstd_zeros(out: &mut impl Write, head: &[u8], zeros: u64) -> anyhow::Result<()> {
    const BLOCK: u64 = 128 << 10;
    out.write_all(&[0x28, 0xb5, 0x2f, 0xfd])?;
    // Frame header: no checksum, no content size, a window descriptor of 128 KiB.
    out.write_all(&[0x00, 7 << 3])?;
    let block_header = |last: bool, kind: u32, size: u64| -> [u8; 3] {
        let value = u32::from(last) | (kind << 1) | ((size as u32) << 3);
        let b = value.to_le_bytes();
        [b[0], b[1], b[2]]
    };
    out.write_all(&block_header(false, 0, head.len() as u64))?;
    out.write_all(head)?;
    let mut left = zeros;
    while left > 0 {
        let size = left.min(BLOCK);
        left -= size;
        out.write_all(&block_header(left == 0, 1, size))?;
        out.write_all(&[0])?;
    }
    Ok(())
}

/// Terminal escapes in every name and text field an image carries.
fn escapes(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "escapes";
    let never = &["pwned\u{7}"][..];
    // File names, link targets, a hardlink, a directory, and the entrypoint itself.
    let name = format!("app{EVIL}");
    let path = cases.image_dir(CLASS, "names");
    simple_with(
        &path,
        vec![
            dir(format!("d{EVIL}/")),
            file(format!("d{EVIL}/f{EVIL}"), "x"),
            exe(&name, "#!/bin/nope\n"),
            symlink(format!("l{EVIL}"), format!("/t{EVIL}")),
            hardlink(format!("h{EVIL}"), &name),
        ],
        |c| c["config"]["Entrypoint"] = json!([format!("/{name}")]),
    )?;
    cases
        .scan(CLASS, "escapes-names", &path, &[1])
        .says(&["pwned"])
        .never_says(never);
    cases
        .run(CLASS, "escapes-names-tree", &["tree"], &path, &[], &[0])
        .says(&["pwned"]);
    cases
        .run(
            CLASS,
            "escapes-names-inspect",
            &["inspect"],
            &path,
            &[&format!("/{name}")],
            &[0],
        )
        .says(&["pwned"]);
    cases.run(
        CLASS,
        "escapes-names-inspect-missing",
        &["inspect"],
        &path,
        &[&format!("/gone{EVIL}")],
        &[2],
    );

    // Config text: history, Env, User, Cmd, WorkingDir, Labels, and a secret-looking Env.
    let path = cases.image_dir(CLASS, "config");
    simple_with(&path, vec![], |c| {
        c["history"][0]["created_by"] = json!(format!("RUN echo {EVIL}"));
        c["history"][0]["comment"] = json!(EVIL);
        c["history"][0]["author"] = json!(EVIL);
        c["author"] = json!(EVIL);
        c["config"]["Env"] = json!([
            "PATH=/usr/bin:/bin",
            format!("TZ=Europe/{EVIL}"),
            format!("SSL_CERT_FILE=/etc/{EVIL}"),
            format!("{EVIL}=x"),
            format!("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLE{EVIL}"),
        ]);
        c["config"]["User"] = json!(format!("pwned{EVIL}"));
        c["config"]["Entrypoint"] = json!([format!("/bin/pwned{EVIL}")]);
        c["config"]["Cmd"] = json!([EVIL]);
        c["config"]["WorkingDir"] = json!(format!("/{EVIL}"));
        c["config"]["Labels"] = json!({ EVIL: EVIL });
    })?;
    cases
        .scan(CLASS, "escapes-config", &path, &[1])
        .says(&["pwned"])
        .never_says(never);
    cases
        .run(
            CLASS,
            "escapes-config-json",
            &["scan", "--format", "json"],
            &path,
            &[],
            &[1],
        )
        .says(&["pwned"]);

    // The platform's os, architecture and variant (a foreign platform is named in a note).
    let path = cases.image_dir(CLASS, "platform");
    simple_with(&path, vec![], |c| {
        c["os"] = json!(format!("linux{EVIL}"));
        c["architecture"] = json!(format!("arm{EVIL}"));
        c["variant"] = json!(EVIL);
    })?;
    cases
        .scan(CLASS, "escapes-platform", &path, &[0])
        .never_says(never);

    // The tag (OCI ref name) and a `--image` asking for it.
    let path = cases.image_dir(CLASS, "tag");
    let layout = Layout::new(&path)?;
    let layer = layout.layer(&with_base(vec![], Some(elf(None))))?;
    let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
    let manifest = serde_json::to_vec(&manifest_json(
        &json!({"mediaType": OCI_CONFIG, "digest": layout.put(&cfg)?, "size": cfg.len()}),
        &[layer],
    ))?;
    let descriptor = json!({
        "mediaType": OCI_MANIFEST,
        "digest": layout.put(&manifest)?,
        "size": manifest.len(),
    });
    let mut one = descriptor.clone();
    one["annotations"] = json!({ REF_NAME: format!("v1{EVIL}") });
    let mut two = descriptor.clone();
    two["annotations"] = json!({ REF_NAME: format!("v2{EVIL}"), "evil": EVIL });
    two["platform"] = json!({"os": "linux", "architecture": format!("amd64{EVIL}")});
    layout.index_json(&[one, two])?;
    cases
        .scan(CLASS, "escapes-tag", &path, &[0])
        .never_says(never);
    cases
        .run(
            CLASS,
            "escapes-tag-missing",
            &["scan", "--image", &format!("nope{EVIL}")],
            &path,
            &[],
            &[2],
        )
        .never_says(never);

    // A media type full of escapes: unknown, so refused, naming it.
    let path = cases.image_dir(CLASS, "media-type");
    let layout = Layout::new(&path)?;
    let mut layer = layout.layer(&with_base(vec![], Some(elf(None))))?;
    layer.media_type = format!("application/x-{EVIL}");
    layout.image(
        std::slice::from_ref(&layer),
        &config(std::slice::from_ref(&layer)),
    )?;
    cases
        .scan(CLASS, "escapes-media-type", &path, &[4])
        .says(&["media type"])
        .never_says(never);

    // A `docker save` archive whose RepoTags, Config and Layers names carry escapes.
    let path = cases.dir.join(CLASS).join("docker-archive.tar");
    let layer_tar = tar(&with_base(vec![], Some(elf(None))))?;
    let mut cfg = config(&[]);
    cfg["rootfs"]["diff_ids"] = json!([crate::blob::digest(&layer_tar)]);
    cfg["history"] = json!([{"created_by": EVIL}]);
    let cfg = serde_json::to_vec(&cfg)?;
    let manifest = serde_json::to_vec(&json!([{
        "Config": "config.json",
        "RepoTags": [format!("evil{EVIL}:latest"), format!("docker.io/x/y:{EVIL}")],
        "Layers": ["layer.tar"],
    }]))?;
    fs::write(
        &path,
        tar(&[
            file("manifest.json", manifest),
            file("config.json", cfg),
            file("layer.tar", layer_tar),
        ])?,
    )?;
    cases
        .scan(CLASS, "escapes-repotags", &path, &[0])
        .never_says(never);

    // passwd and group lines with escapes, the user named there.
    let path = cases.image_dir(CLASS, "passwd");
    simple_with(
        &path,
        vec![
            file(
                "etc/passwd",
                format!("root:x:0:0:root:/root:/bin/sh\n{EVIL}:x:1000:1000::/:{EVIL}\n"),
            ),
            file("etc/group", format!("{EVIL}:x:1000:\n")),
        ],
        |c| c["config"]["User"] = json!(format!("{EVIL}:{EVIL}")),
    )?;
    cases
        .scan(CLASS, "escapes-passwd", &path, &[0, 1])
        .never_says(never);
    Ok(())
}

/// The kernel refuses to run these: each must be a critical finding on the entrypoint.
fn kernel_refused(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "kernel-refused";
    let good = elf(Some(LOADER));
    let loader = || vec![dir("lib64/"), exe("lib64/ld-linux-x86-64.so.2", elf(None))];
    let mut variants: Vec<(&str, Vec<u8>)> = vec![
        ("truncated-header", good[..40].to_vec()),
        (
            "phnum-65535",
            patch(good.clone(), 56, &65535u16.to_le_bytes()),
        ),
        ("phnum-0", patch(good.clone(), 56, &0u16.to_le_bytes())),
        (
            "phentsize-wrong",
            patch(good.clone(), 54, &32u16.to_le_bytes()),
        ),
        (
            "phoff-beyond-eof",
            patch(good.clone(), 32, &(1u64 << 40).to_le_bytes()),
        ),
        (
            "type-relocatable",
            patch(good.clone(), 16, &1u16.to_le_bytes()),
        ),
        (
            "type-garbage",
            patch(good.clone(), 16, &0xfe00u16.to_le_bytes()),
        ),
    ];
    // PT_INTERP: without its NUL, larger than the file, beyond EOF.
    let interp_filesz = 64 + 32;
    let mut no_nul = good.clone();
    let at = 64 + 56 * 2 + LOADER.len();
    no_nul[at] = b'X';
    variants.push(("interp-without-nul", no_nul));
    variants.push((
        "interp-larger-than-file",
        patch(good.clone(), interp_filesz, &(1u64 << 20).to_le_bytes()),
    ));
    variants.push((
        "interp-beyond-eof",
        patch(good.clone(), 64 + 8, &(1u64 << 30).to_le_bytes()),
    ));
    for (name, bytes) in variants {
        let mut entries = loader();
        entries.push(exe("app", bytes));
        let path = cases.image_dir(CLASS, name);
        simple(&path, entries)?;
        cases
            .scan(CLASS, &format!("elf-{name}"), &path, &[1])
            .says(&["/app"]);
    }
    // A script whose interpreter is itself; an entrypoint that is a FIFO, a symlink loop, a
    // directory, a device.
    let specials: Vec<(&str, Vec<Ent>)> = vec![
        ("shebang-self", vec![exe("app", "#!/app\n")]),
        ("entrypoint-fifo", vec![Ent::new("app", b'6').mode(0o755)]),
        (
            "entrypoint-symlink-loop",
            vec![symlink("app", "app2"), symlink("app2", "app")],
        ),
        ("entrypoint-dir", vec![dir("app/")]),
        (
            "entrypoint-device",
            vec![device("app", b'3', 1, 3).mode(0o755)],
        ),
    ];
    for (name, entries) in specials {
        let path = cases.image_dir(CLASS, name);
        simple(&path, entries)?;
        cases.scan(CLASS, name, &path, &[1]).says(&["/app"]);
    }
    Ok(())
}

/// Every ELF header field set to nonsense, on a program that is not the entrypoint (`/bin/x`)
/// and on the entrypoint. The kernel ignores some fields (the program still runs) and refuses
/// others, so only "a scan, no crash, no hang" is asked of the non-entrypoint ones.
fn elf_fields(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "elf-fields";
    let good = elf(Some(LOADER));
    // The fields the kernel checks (binfmt_elf: e_type, e_machine, e_phentsize, e_phnum, the
    // program headers and the interpreter within the file) make the entrypoint fail: exit 1.
    // The others it ignores, or fail later at run time: a scan either way.
    const REFUSED: &[&str] = &[
        "e-type",
        "e-machine",
        "e-phoff",
        "e-phentsize",
        "e-phnum",
        "p-offset",
        "p-filesz",
    ];
    let fields: &[(&str, usize, &[u8])] = &[
        ("ei-class", 4, &[0xff]),
        ("ei-class-32", 4, &[1]),
        ("ei-data", 5, &[0xff]),
        ("ei-data-big-endian", 5, &[2]),
        ("ei-version", 6, &[0xff]),
        ("ei-osabi", 7, &[0xff]),
        ("e-type", 16, &[0xff, 0xff]),
        ("e-machine", 18, &[0xff, 0xff]),
        ("e-version", 20, &[0xff; 4]),
        ("e-entry", 24, &[0xff; 8]),
        ("e-phoff", 32, &[0xff; 8]),
        ("e-shoff", 40, &[0xff; 8]),
        ("e-shoff-inside", 40, &[64, 0, 0, 0, 0, 0, 0, 0]),
        ("e-flags", 48, &[0xff; 4]),
        ("e-ehsize", 52, &[0xff, 0xff]),
        ("e-phentsize", 54, &[0xff, 0xff]),
        ("e-phnum", 56, &[0xff, 0xff]),
        ("e-shentsize", 58, &[0xff, 0xff]),
        ("e-shnum", 60, &[0xff, 0xff]),
        ("e-shstrndx", 62, &[0xff, 0xff]),
        ("p-type", 64, &[0xff; 4]),
        ("p-flags", 68, &[0xff; 4]),
        ("p-offset", 72, &[0xff; 8]),
        ("p-vaddr", 80, &[0xff; 8]),
        ("p-filesz", 96, &[0xff; 8]),
        ("p-memsz", 104, &[0xff; 8]),
        ("p-align", 112, &[0xff; 8]),
        ("load-offset", 64 + 56 + 8, &[0xff; 8]),
        ("load-filesz", 64 + 56 + 32, &[0xff; 8]),
    ];
    let mut all = vec![
        dir("lib64/"),
        exe("lib64/ld-linux-x86-64.so.2", elf(None)),
        dir("bin/"),
    ];
    for (name, offset, value) in fields {
        let bytes = patch(good.clone(), *offset, value);
        all.push(exe(format!("bin/{name}"), bytes.clone()));
        let path = cases.image_dir(CLASS, name);
        simple(
            &path,
            vec![
                dir("lib64/"),
                exe("lib64/ld-linux-x86-64.so.2", elf(None)),
                exe("app", bytes),
            ],
        )?;
        if REFUSED.contains(name) {
            cases
                .scan(CLASS, &format!("elf-field-{name}"), &path, &[1])
                .says(&["/app"]);
        } else {
            cases.scan(CLASS, &format!("elf-field-{name}"), &path, &[0, 1]);
        }
        cases.run(
            CLASS,
            &format!("elf-field-{name}-inspect"),
            &["inspect"],
            &path,
            &["/app"],
            &[0],
        );
    }
    let path = cases.image_dir(CLASS, "all-in-bin");
    simple(&path, all)?;
    cases.scan(CLASS, "elf-fields-all-in-bin", &path, &[0, 1]);
    Ok(())
}

/// An `/etc/passwd` larger than what drydock captures: the user is in it (last line), so it
/// must not be reported absent or unknown.
fn big_passwd(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "big-passwd";
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut i = 0;
    while passwd.len() < 12 << 20 {
        passwd.push_str(&format!(
            "user{i}:x:{}:{}::/home/u:/bin/sh\n",
            2000 + i,
            2000 + i
        ));
        i += 1;
    }
    passwd.push_str("appuser:x:1000:1000::/home/app:/bin/sh\n");
    let path = cases.image_dir(CLASS, "passwd-12mib");
    simple_with(
        &path,
        vec![
            file("etc/passwd", passwd),
            file("etc/group", "root:x:0:\napp:x:1000:\n"),
        ],
        |c| c["config"]["User"] = json!("appuser"),
    )?;
    cases
        .run(
            CLASS,
            "passwd-larger-than-capture",
            &["scan", "--format", "json"],
            &path,
            &[],
            &[0],
        )
        // Exit 0 (no critical finding gates): an info finding says the file was not examined
        // whole.
        .says(&["Not examined whole", "over the 8 MiB drydock reads"])
        .never_says(&["has no /etc/passwd"])
        .limits(SMALL_SECONDS, 300);
    Ok(())
}

/// A gzip layer declared as zstd: read, with a note.
fn compression_lie(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "compression-lie";
    let path = cases.image_dir(CLASS, "gzip-as-zstd");
    let layout = Layout::new(&path)?;
    let mut layer = layout.layer(&with_base(vec![], Some(elf(None))))?;
    layer.media_type = LAYER_ZSTD.into();
    layout.image(
        std::slice::from_ref(&layer),
        &config(std::slice::from_ref(&layer)),
    )?;
    cases
        .run(
            CLASS,
            "gzip-declared-as-zstd",
            &["scan", "--format", "json"],
            &path,
            &[],
            &[0],
        )
        .says(&[
            "declares `application/vnd.oci.image.layer.v1.tar+zstd`",
            "gzip-compressed",
        ]);
    Ok(())
}

/// GNU tar's sparse files: PAX formats read, the old `S` type refused.
fn sparse(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "sparse";
    let work = cases.dir.join(CLASS).join("work");
    fs::create_dir_all(work.join("root"))?;
    let big = work.join("root/sparse.bin");
    let f = fs::File::create(&big)?;
    f.set_len(1 << 30)?;
    drop(f);
    {
        let mut f = fs::OpenOptions::new().write(true).open(&big)?;
        io::Seek::seek(&mut f, io::SeekFrom::Start(512 << 20))?;
        f.write_all(b"data in the middle of a hole")?;
    }
    for (name, format) in [("pax", "pax"), ("gnu", "gnu")] {
        let out = work.join(format!("{name}.tar"));
        let status = Command::new("tar")
            .args(["--sparse", &format!("--format={format}"), "-cf"])
            .arg(&out)
            .arg("-C")
            .arg(work.join("root"))
            .arg("sparse.bin")
            .status()?;
        if !status.success() {
            bail!("tar --sparse --format={format} failed");
        }
        let plain = fs::read(&out)?;
        let path = cases.image_dir(CLASS, name);
        let layout = Layout::new(&path)?;
        let base = layout.layer(&with_base(vec![], Some(elf(None))))?;
        let layer = layout.layer_bytes(
            &crate::blob::gzip(&plain, flate2::Compression::best())?,
            &crate::blob::digest(&plain),
            LAYER_GZIP,
        )?;
        let layers = [base, layer];
        layout.image(&layers, &config(&layers))?;
        if name == "pax" {
            cases
                .run(
                    CLASS,
                    "sparse-pax",
                    &["tree", "--format", "json"],
                    &path,
                    &[],
                    &[0],
                )
                .says(&["\"/sparse.bin\"", "1073741824"])
                .never_says(&["GNUSparseFile"]);
        } else {
            cases.scan(CLASS, "sparse-old-gnu", &path, &[4]).says(&[
                "layer 1 (sha256:",
                "old GNU sparse entry",
                "sparse.bin",
            ]);
        }
    }
    fs::remove_dir_all(&work)?;
    Ok(())
}

/// A traversal case: name, entries, exit codes accepted, words the message holds.
type Shape<'a> = (&'a str, Vec<Ent>, &'a [i32], &'a [&'a str]);
type ConfigEdit = Box<dyn Fn(&mut Value)>;
type ManifestEdit = Box<dyn Fn(&mut Value, &Layout) -> anyhow::Result<()>>;

/// Escapes from the root through every kind of name and link.
fn traversal(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "traversal";
    let mut long_dotdot = dir("x/");
    long_dotdot.name = format!("a/{}etc/x", "../".repeat(40)).into_bytes();
    long_dotdot.kind = b'0';
    let mut gnu_dotdot = long_dotdot.clone();
    gnu_dotdot.gnu_long = true;
    let mut pax_link = symlink("pl", "x");
    pax_link
        .pax
        .push(("linkpath".into(), b"../../../../etc".to_vec()));
    let mut pax_hard = hardlink("ph", "x");
    pax_hard
        .pax
        .push(("linkpath".into(), b"../../etc/shadow".to_vec()));
    let shapes: Vec<Shape<'_>> = vec![
        (
            "dotdot-path",
            vec![file("../../etc/passwd", "x")],
            &[4],
            &["climbs out"],
        ),
        ("dotdot-dir", vec![dir("../x/")], &[4], &["climbs out"]),
        (
            "dotdot-inside",
            vec![file("a/../../b", "x")],
            &[4],
            &["climbs out"],
        ),
        ("absolute-path", vec![file("/etc/abs", "x")], &[0], &[]),
        ("pax-long-dotdot", vec![long_dotdot], &[4], &["climbs out"]),
        ("gnu-long-dotdot", vec![gnu_dotdot], &[4], &["climbs out"]),
        (
            "symlink-relative-out",
            vec![symlink("esc", "../../../etc"), file("esc/passwd", "x")],
            &[4],
            &["/esc"],
        ),
        (
            "symlink-absolute-out",
            vec![symlink("esc", "/../../../etc"), file("esc/passwd", "x")],
            &[0, 4],
            &[],
        ),
        (
            "symlink-chain-out",
            vec![
                dir("a/"),
                symlink("a/b", "../c"),
                symlink("c", "a/b/../.."),
                file("c/x", "x"),
            ],
            &[4],
            &[],
        ),
        (
            "pax-symlink-out",
            vec![pax_link, file("pl/passwd", "x")],
            &[4],
            &["/pl"],
        ),
        (
            "hardlink-out",
            vec![hardlink("h", "../../etc/shadow")],
            &[4],
            &["hardlink target"],
        ),
        (
            "pax-hardlink-out",
            vec![pax_hard],
            &[4],
            &["hardlink target"],
        ),
        (
            "hardlink-through-symlink",
            vec![symlink("up", "/.."), hardlink("h", "up/etc/passwd")],
            &[0, 4],
            &[],
        ),
        (
            "hardlink-to-symlink-out",
            vec![symlink("s", "../../../etc/shadow"), hardlink("h", "s")],
            &[0, 4],
            &[],
        ),
        (
            "whiteout-through-symlink",
            vec![symlink("esc", "../../.."), file("esc/.wh.passwd", "")],
            &[4],
            &[],
        ),
        (
            "dir-through-symlink",
            vec![symlink("esc", "../../.."), dir("esc/newdir/")],
            &[4],
            &[],
        ),
        (
            "device-through-symlink",
            vec![symlink("esc", "../.."), device("esc/dev-null", b'3', 1, 3)],
            &[4],
            &[],
        ),
    ];
    for (name, entries, exit, says) in shapes {
        let path = cases.image_dir(CLASS, name);
        simple(&path, entries)?;
        cases
            .scan(CLASS, &format!("traversal-{name}"), &path, exit)
            .says(says);
    }
    // A symlink that climbs above the root as the entrypoint. A runtime would store it and
    // clamp it at run time; drydock refuses any link written to climb out of the root (a
    // hostile construct no build produces; docs/compatibility.md), and never follows it.
    let path = cases.image_dir(CLASS, "entrypoint-to-host");
    simple(&path, vec![symlink("app", "/../../../../bin/sh")])?;
    cases
        .scan(CLASS, "traversal-entrypoint-to-host", &path, &[4])
        .says(&["/app", "climbs out of the image root"]);
    Ok(())
}

/// Whiteouts of `/`, `..`, `.` and empty names, and opaque markers in odd places.
fn whiteouts(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "whiteout";
    const NO_FILE: &[&str] = &["a whiteout that names no file"];
    let shapes: Vec<(&str, &str, &[i32], &[&str])> = vec![
        ("empty-name", ".wh.", &[4], NO_FILE),
        ("dotdot", ".wh...", &[4], NO_FILE),
        ("dot", ".wh..", &[4], NO_FILE),
        ("root-slash", "/.wh.", &[4], NO_FILE),
        ("dotdot-in-dir", "etc/.wh...", &[4], NO_FILE),
        ("slash-name", ".wh./", &[4], NO_FILE),
        ("opaque-dotdot", "../.wh..wh..opq", &[4], &["climbs out"]),
        // The root made opaque hides every lower file: the entrypoint is gone.
        ("opaque-root", ".wh..wh..opq", &[1], &["/app"]),
        // The whiteout of a file named `.wh.app`, which is not there: nothing happens.
        ("nested-prefix", ".wh..wh.app", &[0], &[]),
    ];
    for (name, entry, exit, says) in shapes {
        let path = cases.image_dir(CLASS, name);
        let layout = Layout::new(&path)?;
        let first = layout.layer(&with_base(vec![], Some(elf(None))))?;
        let second = layout.layer(&[file(entry, "")])?;
        let layers = [first, second];
        layout.image(&layers, &config(&layers))?;
        cases
            .scan(CLASS, &format!("whiteout-{name}"), &path, exit)
            .says(says);
    }
    Ok(())
}

/// Duplicate entries of different types, devices and FIFOs, 64 KiB names.
fn odd_entries(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "odd-entries";
    let path = cases.image_dir(CLASS, "duplicates");
    simple(
        &path,
        vec![
            file("dup", "a file"),
            dir("dup/"),
            file("dup/child", "x"),
            symlink("dup", "/etc"),
            hardlink("dup", "etc/passwd"),
            Ent::new("dup", b'6'),
            dir("dup/"),
            file("dup2/", "a file named like a dir"),
            dir("dup2"),
            symlink("dup3", "dup3"),
            file("dup3", "last wins"),
        ],
    )?;
    cases.scan(CLASS, "duplicate-types", &path, &[0]);
    cases.run(CLASS, "duplicate-types-tree", &["tree"], &path, &[], &[0]);

    let path = cases.image_dir(CLASS, "devices");
    simple(
        &path,
        vec![
            dir("dev/"),
            device("dev/null", b'3', 1, 3),
            device("dev/sda", b'4', 8, 0),
            device("dev/huge", b'3', 0o7777777, 0o7777777),
            Ent::new("dev/fifo", b'6'),
            device("etc/localtime", b'3', 1, 3),
            Ent::new("etc/ld.so.cache", b'6'),
        ],
    )?;
    cases.scan(CLASS, "devices-and-fifos", &path, &[0, 1]);
    cases
        .run(CLASS, "devices-and-fifos-tree", &["tree"], &path, &[], &[0])
        .says(&["/dev/sda"]);

    let long = "n".repeat(64 << 10);
    let mut gnu_long = file(format!("g{long}"), "x");
    gnu_long.gnu_long = true;
    let mut gnu_link = symlink("gl", format!("/{long}"));
    gnu_link.gnu_long = true;
    // Refused (PATH_MAX), and the reason must survive however long the name is.
    const TOO_LONG: &[&str] = &["PATH_MAX"];
    let names: Vec<(&str, Vec<Ent>, &[&str])> = vec![
        ("pax-64k-name", vec![file(&long, "x")], TOO_LONG),
        ("gnu-64k-name", vec![gnu_long], TOO_LONG),
        (
            "64k-deep-path",
            vec![file("a/".repeat(32 << 10) + "f", "x")],
            TOO_LONG,
        ),
        ("pax-64k-hardlink", vec![hardlink("h", &long)], TOO_LONG),
        (
            "pax-64k-link",
            vec![symlink("l", format!("/{long}"))],
            &["too long"],
        ),
        ("gnu-64k-link", vec![gnu_link], &["too long"]),
    ];
    for (name, entries, says) in names {
        let path = cases.image_dir(CLASS, name);
        simple(&path, entries)?;
        cases.scan(CLASS, name, &path, &[4]).says(says);
    }
    Ok(())
}

/// Absurd, negative and garbage sizes in tar headers, PAX records and descriptors.
fn sizes(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "sizes";
    let base256 = |negative: bool, value: u64| {
        let mut field = [if negative { 0xff } else { 0x80 }; 12];
        field[4..].copy_from_slice(&value.to_be_bytes());
        field
    };
    let mut fields: Vec<(&str, [u8; 12])> = vec![
        ("base256-2^62", base256(false, 1 << 62)),
        ("base256-max", base256(false, u64::MAX)),
        ("base256-negative", base256(true, u64::MAX - 511)),
        ("octal-max", *b"77777777777\0"),
        ("garbage", *b"zzzzzzzzzzz\0"),
    ];
    let mut spaces = [b' '; 12];
    spaces[11] = 0;
    fields.push(("spaces", spaces));
    for (name, field) in fields {
        let mut e = file("big", "x");
        e.size_field = Some(field);
        let path = cases.image_dir(CLASS, name);
        simple(&path, vec![e])?;
        cases
            .scan(CLASS, &format!("size-{name}"), &path, &[4])
            .says(&["layer 0 (sha256:"]);
    }
    for (name, value) in [
        ("pax-negative", "-1"),
        ("pax-huge", "99999999999999999999999"),
        ("pax-2^63", "9223372036854775808"),
        ("pax-garbage", "12abc"),
    ] {
        let mut e = file("big", "x");
        e.pax.push(("size".into(), value.as_bytes().to_vec()));
        let path = cases.image_dir(CLASS, name);
        simple(&path, vec![e])?;
        cases
            .scan(CLASS, &format!("size-{name}"), &path, &[4])
            .says(&["layer 0 (sha256:"]);
    }
    // Descriptors with absurd and negative sizes.
    for (name, size) in [
        ("descriptor-huge", json!(u64::MAX)),
        ("descriptor-negative", json!(-1)),
        ("descriptor-float", json!(1.5)),
    ] {
        let path = cases.image_dir(CLASS, name);
        let layout = Layout::new(&path)?;
        let layer = layout.layer(&with_base(vec![], Some(elf(None))))?;
        let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
        let mut manifest = manifest_json(
            &json!({"mediaType": OCI_CONFIG, "digest": layout.put(&cfg)?, "size": cfg.len()}),
            &[layer],
        );
        manifest["layers"][0]["size"] = size;
        layout.top_manifest(&serde_json::to_vec(&manifest)?, "latest")?;
        cases.scan(CLASS, &format!("size-{name}"), &path, &[4]);
    }
    Ok(())
}

/// A million entries in one layer; 10,000 layers; 100,000 index entries.
fn many(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "many";
    let path = cases.image_dir(CLASS, "million-entries");
    let layout = Layout::new(&path)?;
    let base = tar(&with_base(vec![], Some(elf(None))))?;
    let mut diff = Sha256::new();
    let (blob_digest, size) = layout.put_stream(|out| {
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        let mut put = |bytes: &[u8]| -> io::Result<()> {
            diff.update(bytes);
            encoder.write_all(bytes)
        };
        put(&base[..base.len() - 1024])?;
        for d in 0..1000 {
            put(&header(
                format!("m/{d}/").as_bytes(),
                b'5',
                0,
                0o755,
                b"",
                (0, 0),
            ))?;
            for f in 0..1000 {
                put(&header(
                    format!("m/{d}/{f}").as_bytes(),
                    b'0',
                    0,
                    0o644,
                    b"",
                    (0, 0),
                ))?;
            }
        }
        put(&[0u8; 1024])?;
        encoder.finish()?;
        Ok(())
    })?;
    let diff_id = format!(
        "sha256:{}",
        diff.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let layer = Blob {
        digest: blob_digest,
        size,
        media_type: LAYER_GZIP.into(),
        diff_id,
    };
    layout.image(
        std::slice::from_ref(&layer),
        &config(std::slice::from_ref(&layer)),
    )?;
    cases
        .scan(CLASS, "million-entries", &path, &[0])
        .limits(180, 1536);

    // 10,000 layers of a few bytes each.
    let path = cases.image_dir(CLASS, "ten-thousand-layers");
    let layout = Layout::new(&path)?;
    let mut layers = vec![layout.layer(&with_base(vec![], Some(elf(None))))?];
    for i in 0..10_000 {
        layers.push(layout.layer(&[file(format!("f{}", i % 100), i.to_string())])?);
    }
    layout.image(&layers, &config(&layers))?;
    cases
        .scan(CLASS, "ten-thousand-layers", &path, &[0])
        .limits(90, 512);

    // An index with 100,000 entries for the same 4 MiB manifest, untagged: 15 MB that a
    // scanner reading every entry's manifest anew turns into 400 GB of reading and parsing.
    let path = cases.image_dir(CLASS, "wide-index");
    let layout = Layout::new(&path)?;
    let layer = layout.layer(&with_base(vec![], Some(elf(None))))?;
    let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
    let mut manifest = manifest_json(
        &json!({"mediaType": OCI_CONFIG, "digest": layout.put(&cfg)?, "size": cfg.len()}),
        &[layer],
    );
    manifest["annotations"] = json!({"pad": "x".repeat(4 << 20)});
    let manifest = serde_json::to_vec(&manifest)?;
    let one = json!({
        "mediaType": OCI_MANIFEST,
        "digest": layout.put(&manifest)?,
        "size": manifest.len(),
    });
    layout.index_json(&vec![one; 100_000])?;
    cases.scan(CLASS, "wide-index", &path, &[0]).limits(60, 500);
    Ok(())
}

/// Lying, huge, deep, nested and self-referencing documents.
fn documents(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "documents";
    let dir = cases.dir.join(CLASS);
    let plain_layer = |layout: &Layout| layout.layer(&with_base(vec![], Some(elf(None))));

    // Configs that lie: more diff_ids than layers, a wrong diff_id, a config that is an array,
    // an rootfs type that is not layers, a config declared bigger than it is.
    let lies: Vec<(&str, ConfigEdit, &[&str])> = vec![
        (
            "config-extra-diff-id",
            Box::new(|c: &mut Value| {
                if let Some(ids) = c["rootfs"]["diff_ids"].as_array_mut() {
                    ids.push(json!(crate::blob::digest(b"more")));
                }
            }),
            &["diff_ids"],
        ),
        (
            "config-no-diff-ids",
            Box::new(|c: &mut Value| c["rootfs"]["diff_ids"] = json!([])),
            &["diff_ids"],
        ),
        (
            "config-wrong-diff-id",
            Box::new(|c: &mut Value| {
                c["rootfs"]["diff_ids"][0] = json!(crate::blob::digest(b"lie"))
            }),
            &["diff_id"],
        ),
        (
            "config-array",
            Box::new(|c: &mut Value| *c = json!([c.clone()])),
            &["config"],
        ),
        (
            "config-diff-id-not-a-digest",
            Box::new(|c: &mut Value| c["rootfs"]["diff_ids"][0] = json!("sha256:../../etc")),
            &[],
        ),
        (
            "config-history-10000",
            Box::new(|c: &mut Value| {
                c["history"] = json!(vec![
                    json!({"created_by": "RUN x", "empty_layer": false});
                    10_000
                ]);
            }),
            &[],
        ),
    ];
    for (name, edit, says) in lies {
        let path = dir.join(name);
        let layout = Layout::new(&path)?;
        let layer = plain_layer(&layout)?;
        let mut cfg = config(std::slice::from_ref(&layer));
        edit(&mut cfg);
        layout.image(&[layer], &cfg)?;
        let exit: &[i32] = if name == "config-history-10000" {
            &[0, 4]
        } else {
            &[4]
        };
        cases.scan(CLASS, name, &path, exit).says(says);
    }

    // Manifests that lie: config digest of another blob, layer count and media type of an
    // index, a config size larger than the blob, a layer digest that is not a digest.
    let manifest_lies: Vec<(&str, ManifestEdit)> = vec![
        (
            "manifest-config-other-blob",
            Box::new(|m: &mut Value, l: &Layout| {
                m["config"]["digest"] = json!(l.put(b"{}")?);
                Ok(())
            }),
        ),
        (
            "manifest-config-size-lie",
            Box::new(|m: &mut Value, _: &Layout| {
                m["config"]["size"] = json!(50 << 20);
                Ok(())
            }),
        ),
        (
            "manifest-says-index",
            Box::new(|m: &mut Value, _: &Layout| {
                m["mediaType"] = json!(OCI_INDEX);
                Ok(())
            }),
        ),
        (
            "manifest-layer-digest-traversal",
            Box::new(|m: &mut Value, _: &Layout| {
                m["layers"][0]["digest"] = json!("sha256:../../../../etc/passwd");
                Ok(())
            }),
        ),
        (
            "manifest-layer-digest-md5",
            Box::new(|m: &mut Value, _: &Layout| {
                m["layers"][0]["digest"] = json!("md5:d41d8cd98f00b204e9800998ecf8427e");
                Ok(())
            }),
        ),
        (
            "manifest-no-layers",
            Box::new(|m: &mut Value, _: &Layout| {
                m["layers"] = json!([]);
                Ok(())
            }),
        ),
    ];
    for (name, edit) in manifest_lies {
        let path = dir.join(name);
        let layout = Layout::new(&path)?;
        let layer = plain_layer(&layout)?;
        let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
        let mut manifest = manifest_json(
            &json!({"mediaType": OCI_CONFIG, "digest": layout.put(&cfg)?, "size": cfg.len()}),
            &[layer],
        );
        edit(&mut manifest, &layout)?;
        layout.top_manifest(&serde_json::to_vec(&manifest)?, "latest")?;
        cases.scan(CLASS, name, &path, &[2, 4]);
    }

    // 50 MB documents: index.json, a manifest, a config, a docker manifest.json.
    let fifty = 50usize << 20;
    let path = dir.join("huge-index-json");
    let layout = Layout::new(&path)?;
    let layer = plain_layer(&layout)?;
    layout.image(
        std::slice::from_ref(&layer),
        &config(std::slice::from_ref(&layer)),
    )?;
    let mut index = fs::read(path.join("index.json"))?;
    index.extend(std::iter::repeat_n(b' ', fifty));
    fs::write(path.join("index.json"), index)?;
    cases
        .scan(CLASS, "huge-index-json", &path, &[4])
        .says(&["index.json"]);

    let path = dir.join("huge-config");
    let layout = Layout::new(&path)?;
    let layer = plain_layer(&layout)?;
    let mut cfg = config(std::slice::from_ref(&layer));
    cfg["config"]["Labels"] = json!({"pad": "x".repeat(fifty)});
    layout.image(&[layer], &cfg)?;
    cases.scan(CLASS, "huge-config", &path, &[4]);

    let path = dir.join("huge-manifest");
    let layout = Layout::new(&path)?;
    let layer = plain_layer(&layout)?;
    let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
    let mut manifest = manifest_json(
        &json!({"mediaType": OCI_CONFIG, "digest": layout.put(&cfg)?, "size": cfg.len()}),
        &[layer],
    );
    manifest["annotations"] = json!({"pad": "x".repeat(fifty)});
    layout.top_manifest(&serde_json::to_vec(&manifest)?, "latest")?;
    cases.scan(CLASS, "huge-manifest", &path, &[4]);

    let path = dir.join("huge-manifest-json.tar");
    let mut manifest = b"[{\"Config\":\"c.json\",\"Layers\":[],\"RepoTags\":[\"x:1\"]}]".to_vec();
    manifest.extend(std::iter::repeat_n(b' ', fifty));
    fs::write(
        &path,
        tar(&[file("manifest.json", manifest), file("c.json", "{}")])?,
    )?;
    cases
        .scan(CLASS, "huge-manifest-json", &path, &[4])
        .says(&["manifest.json"]);

    // Deep JSON: 100,000 nested arrays in each document.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let path = dir.join("deep-index-json");
    let layout = Layout::new(&path)?;
    let layer = plain_layer(&layout)?;
    layout.image(
        std::slice::from_ref(&layer),
        &config(std::slice::from_ref(&layer)),
    )?;
    fs::write(
        path.join("index.json"),
        format!("{{\"schemaVersion\":2,\"manifests\":{deep}}}"),
    )?;
    cases
        .scan(CLASS, "deep-index-json", &path, &[4])
        .says(&["index.json"]);

    let path = dir.join("deep-config");
    let layout = Layout::new(&path)?;
    let layer = plain_layer(&layout)?;
    let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
    let mut text = String::from_utf8_lossy(&cfg).into_owned();
    text.insert_str(1, &format!("\"deep\":{deep},"));
    let manifest = manifest_json(
        &json!({"mediaType": OCI_CONFIG, "digest": layout.put(text.as_bytes())?, "size": text.len()}),
        &[layer],
    );
    layout.top_manifest(&serde_json::to_vec(&manifest)?, "latest")?;
    cases.scan(CLASS, "deep-config", &path, &[0, 4]);

    let path = dir.join("deep-manifest");
    let layout = Layout::new(&path)?;
    let layer = plain_layer(&layout)?;
    let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
    let manifest = serde_json::to_vec(&manifest_json(
        &json!({"mediaType": OCI_CONFIG, "digest": layout.put(&cfg)?, "size": cfg.len()}),
        &[layer],
    ))?;
    let mut text = String::from_utf8_lossy(&manifest).into_owned();
    text.insert_str(1, &format!("\"deep\":{deep},"));
    layout.top_manifest(text.as_bytes(), "latest")?;
    cases.scan(CLASS, "deep-manifest", &path, &[0, 4]);

    let path = dir.join("deep-manifest-json.tar");
    fs::write(&path, tar(&[file("manifest.json", deep.clone())])?)?;
    cases
        .scan(CLASS, "deep-manifest-json", &path, &[4])
        .says(&["manifest.json"]);

    // Indexes nested 1,000 deep; an index naming itself (by a digest it cannot have); an
    // index naming index.json's own descriptor twice.
    let path = dir.join("nested-1000");
    let layout = Layout::new(&path)?;
    let layer = plain_layer(&layout)?;
    let cfg = serde_json::to_vec(&config(std::slice::from_ref(&layer)))?;
    let manifest = serde_json::to_vec(&manifest_json(
        &json!({"mediaType": OCI_CONFIG, "digest": layout.put(&cfg)?, "size": cfg.len()}),
        &[layer],
    ))?;
    let mut child = json!({
        "mediaType": OCI_MANIFEST,
        "digest": layout.put(&manifest)?,
        "size": manifest.len(),
        "platform": {"os": "linux", "architecture": "amd64"},
    });
    for _ in 0..1000 {
        let bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child],
        }))?;
        child = json!({"mediaType": OCI_INDEX, "digest": layout.put(&bytes)?, "size": bytes.len()});
    }
    layout.index_json(&[child])?;
    cases
        .scan(CLASS, "nested-index-1000", &path, &[4])
        .says(&["nested"]);

    let path = dir.join("self-index");
    let layout = Layout::new(&path)?;
    // A blob that lists itself: stored under a digest it claims, which cannot be its own.
    let claimed = crate::blob::digest(b"self");
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": claimed, "size": 0}],
    }))?;
    let patched = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": claimed, "size": bytes.len()}],
    }))?;
    fs::write(layout.blob_path(&claimed), &patched)?;
    layout
        .index_json(&[json!({"mediaType": OCI_INDEX, "digest": claimed, "size": patched.len()})])?;
    cases.scan(CLASS, "self-referencing-index", &path, &[4]);

    // index.json pointing at index.json's digest through a symlinked blob.
    let path = dir.join("index-symlink-loop");
    let layout = Layout::new(&path)?;
    let fake = crate::blob::digest(b"loop");
    std::os::unix::fs::symlink("../../index.json", layout.blob_path(&fake))?;
    layout.index_json(&[json!({"mediaType": OCI_INDEX, "digest": fake, "size": 200})])?;
    cases.scan(CLASS, "index-through-symlink", &path, &[4]);
    Ok(())
}

/// Garbage and huge CA bundles, with a TLS-looking program so that the bundle matters.
fn certificates(cases: &mut Cases) -> anyhow::Result<()> {
    const CLASS: &str = "certs";
    let garbage: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut pem_garbage = Vec::new();
    for i in 0..10_000 {
        pem_garbage.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        pem_garbage.extend_from_slice(format!("{}{EVIL}\n", "QUFB".repeat(i % 50 + 1)).as_bytes());
        pem_garbage.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem_garbage.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nunterminated");
    let host = fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let mut huge = Vec::new();
    while !host.is_empty() && huge.len() < 64 << 20 {
        huge.extend_from_slice(&host);
    }
    let bundles: Vec<(&str, Vec<u8>)> = vec![
        ("binary-garbage", garbage),
        ("pem-garbage", pem_garbage),
        ("huge-64mib", huge),
        ("empty", Vec::new()),
    ];
    for (name, bytes) in bundles {
        let path = cases.image_dir(CLASS, name);
        simple_with(
            &path,
            vec![
                dir("etc/ssl/"),
                dir("etc/ssl/certs/"),
                file("etc/ssl/certs/ca-certificates.crt", bytes.clone()),
                file("etc/ssl/cert.pem", bytes),
            ],
            |c| {
                c["config"]["Env"] = json!([
                    "PATH=/usr/bin:/bin",
                    "SSL_CERT_FILE=/etc/ssl/cert.pem",
                    "SSL_CERT_DIR=/etc/ssl/certs",
                ]);
            },
        )?;
        cases
            .scan(CLASS, &format!("certs-{name}"), &path, &[0, 1])
            .limits(60, 400);
    }
    Ok(())
}
