//! What each fuzz target does with its input. Shared, through `#[path]`, by the fuzz targets
//! (`fuzz/fuzz_targets/`, nightly only) and by the regression test of the normal suite
//! (`tests/it/fuzz_regressions.rs`), which replays every input that once crashed a target.
//! A body never panics on any input: that is the property being fuzzed.

use std::io::Cursor;

use drydock_checks::LdCache;
use drydock_facts::FactsHook;
use drydock_layers::{Limits, Tree, walk_layer};
use drydock_source::{BlobStore, Location, Selector, SourceError};
use sha2::{Digest as _, Sha256};

/// A target's body: any bytes in, nothing out, never a panic.
pub type Body = fn(&[u8]);

/// Every target, by the name of its corpus and regression directory.
pub const TARGETS: &[(&str, Body)] = &[
    ("layer_walk", layer_walk),
    ("elf_facts", elf_facts),
    ("image_documents", image_documents),
    ("archive", archive),
    ("ld_cache", ld_cache),
    ("cert_bundle", cert_bundle),
    ("policy", policy),
    ("go_build_info", go_build_info),
    ("shell_command", shell_command),
    ("ld_conf", ld_conf),
];

/// Small limits, so that a bomb costs the fuzzer milliseconds.
fn limits() -> Limits {
    Limits {
        max_entries: 10_000,
        max_tar_bytes: 16 << 20,
        expansion_allowance: 16 << 20,
        ..Limits::default()
    }
}

/// A layer (plain, gzip, zstd, bzip2 or xz, then tar) walked with every fact reader, applied,
/// listed and resolved.
pub fn layer_walk(data: &[u8]) {
    let Ok(walk) = walk_layer(data, &FactsHook, &limits()) else {
        return;
    };
    let mut tree = Tree::new();
    if tree.apply(0, walk.changes).is_ok() {
        for (path, _) in tree.entries() {
            let _ = tree.resolve(&path, true);
            let _ = tree.canonical(&path);
        }
    }
}

/// ELF facts (headers, dynamic section, versions, sections, Go build information) from bytes.
pub fn elf_facts(data: &[u8]) {
    let _ = drydock_facts::elf_facts(data);
}

/// A store of named members, as an archive or layout would hold them.
struct Members(Vec<(String, Vec<u8>)>);

impl BlobStore for Members {
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self
            .0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.iter().copied().take(limit as usize).collect()))
    }

    fn open(&self, name: &str) -> Result<Box<dyn std::io::Read + Send + '_>, SourceError> {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((_, bytes)) => Ok(Box::new(&bytes[..])),
            None => Err(SourceError::Unavailable(format!("{name}: absent"))),
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn origin(&self) -> &std::path::Path {
        std::path::Path::new("(fuzz)")
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Manifests, indexes, configs and `manifest.json`, resolved as a layout and as a docker
/// archive. The input is up to four documents separated by `0xff`; in each, `@D1@`..`@D3@`
/// and `@S1@`..`@S3@` become the digest and size of documents 1 to 3, so that mutated JSON
/// gets past the digest checks and into the parsers.
pub fn image_documents(data: &[u8]) {
    let parts: Vec<&[u8]> = data.splitn(4, |b| *b == 0xff).collect();
    let mut documents: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    // Fill in from the last document backwards, so that an index can name a manifest that
    // names a config.
    for i in (1..documents.len()).rev() {
        let digest = format!("sha256:{}", sha256_hex(&documents[i]));
        let size = documents[i].len().to_string();
        for document in documents.iter_mut().take(i) {
            let text = String::from_utf8_lossy(document)
                .replace(&format!("@D{i}@"), &digest)
                .replace(&format!("@S{i}@"), &size);
            *document = text.into_bytes();
        }
    }
    let mut members: Vec<(String, Vec<u8>)> = documents
        .iter()
        .skip(1)
        .map(|d| (format!("blobs/sha256/{}", sha256_hex(d)), d.clone()))
        .collect();
    if let Some(first) = documents.first() {
        members.push(("index.json".into(), first.clone()));
        members.push(("manifest.json".into(), first.clone()));
        // docker-archive configs are named by path.
        if let Some(config) = documents.get(1) {
            members.push(("config.json".into(), config.clone()));
        }
    }
    let store = Members(members);
    for location in [
        Location::OciLayout("(fuzz)".into()),
        Location::DockerArchive("(fuzz)".into()),
    ] {
        let _ = drydock_source::resolve(&store, &location, &Selector::default());
        let _ = drydock_source::resolve(
            &store,
            &location,
            &Selector {
                reference: Some("latest".into()),
                platform: "linux/arm64".parse().ok(),
            },
        );
    }
}

/// A whole archive read once as a stream (gzip'd `docker save`, standard input), then
/// resolved.
pub fn archive(data: &[u8]) {
    let reader = Box::new(Cursor::new(data.to_vec()));
    let Ok(store) = drydock_source::stream_archive("(fuzz)".into(), reader, &mut |_, blob| {
        let _ = walk_layer(blob, &FactsHook, &limits());
    }) else {
        return;
    };
    for location in [Location::Stdin, Location::OciArchive("(fuzz)".into())] {
        let _ = drydock_source::resolve(&store, &location, &Selector::default());
    }
}

/// `/etc/ld.so.cache` (the old, new and combined formats), then lookups in it.
pub fn ld_cache(data: &[u8]) {
    if let Some(cache) = LdCache::parse(data) {
        for name in ["libc.so.6", "libz.so.1", ""] {
            for flags in [None, Some(0x0303), Some(0x0000)] {
                let _ = cache.lookup(name, flags).count();
            }
        }
    }
}

/// A PEM certificate bundle: every certificate parsed, expired ones counted.
pub fn cert_bundle(data: &[u8]) {
    let _ = drydock_facts::parse_bundle(data);
}

/// The policy file (`drydock.toml`), against the real catalogue of checks.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let catalogue: Vec<(&str, drydock_checks::Severity)> = drydock_checks::all()
        .iter()
        .map(|c| (c.id(), c.severity()))
        .collect();
    let _ = drydock_report::Policy::parse(text, "fuzz.toml", &catalogue);
}

/// Go build information (`go version -m`'s data) from the bytes at its magic.
pub fn go_build_info(data: &[u8]) {
    let _ = drydock_facts::go_build_info(data);
}

/// A `sh -c` command (shell form, `#!` scripts' interpreter lines), judged for every shell.
pub fn shell_command(data: &[u8]) {
    drydock_checks::fuzzing::shell_command(&String::from_utf8_lossy(data));
}

/// `/etc/ld.so.conf` and two files of `/etc/ld.so.conf.d/` (the input split at `0xff`), which
/// may include each other and themselves, read by the loader emulation.
pub fn ld_conf(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let files = [
        "etc/ld.so.conf",
        "etc/ld.so.conf.d/a.conf",
        "etc/ld.so.conf.d/b.conf",
    ];
    let mut builder = tar::Builder::new(Vec::new());
    for name in files {
        let content = parts.next().unwrap_or_default();
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        if builder.append_data(&mut header, name, content).is_err() {
            return;
        }
    }
    let Ok(tar) = builder.into_inner() else {
        return;
    };
    let Ok(walk) = walk_layer(&tar[..], &FactsHook, &limits()) else {
        return;
    };
    let mut tree = Tree::new();
    if tree.apply(0, walk.changes).is_ok() {
        let _ = drydock_checks::loader::Loader::new(&tree, &["LD_LIBRARY_PATH=/x:/y".to_owned()]);
    }
}
