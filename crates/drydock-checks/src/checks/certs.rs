//! `certs.missing` and `certs.invalid`: the CA certificates TLS clients need to verify
//! servers. Without one, the first HTTPS call fails: "x509: certificate signed by unknown
//! authority" (Go), "unable to get local issuer certificate" (OpenSSL).
//!
//! The roots are counted the way each library loads them. Go (`crypto/x509`,
//! `root_unix.go`): the first bundle file that can be read (`SSL_CERT_FILE` replaces the
//! list), plus every file of the root directories (`SSL_CERT_DIR`, colon-separated, replaces
//! them), leaving out links to a name in the same directory. OpenSSL: the default `CAfile`
//! (`SSL_CERT_FILE`), plus the `CApath` directories (`SSL_CERT_DIR`), where it looks
//! certificates up only through their subject-hash names (`5ad8a5d6.0`, made by `c_rehash` or
//! `openssl rehash`). A client is broken only when its count is zero.

use drydock_facts::CertBundle;
use drydock_layers::NodeId;

use crate::runtime::{date, is_dir, regular_file};
use crate::{Check, Finding, ImageContext, Severity, TLS_LIBRARIES};

/// Go's `crypto/x509` root files (`root_linux.go`), in the order Go tries them.
const GO_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];
/// Go's root directories (`root_linux.go`).
const GO_DIRS: &[&str] = &[
    "/etc/ssl/certs",
    "/etc/pki/tls/certs",
    "/system/etc/security/cacerts",
];
/// OpenSSL's `OPENSSLDIR/cert.pem` as Debian, Alpine and Fedora build it.
const OPENSSL_FILES: &[&str] = &[
    "/usr/lib/ssl/cert.pem",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/cert.pem",
];
/// OpenSSL's `OPENSSLDIR/certs` as Debian, Alpine and Fedora build it.
const OPENSSL_DIRS: &[&str] = &["/usr/lib/ssl/certs", "/etc/ssl/certs", "/etc/pki/tls/certs"];
const EMBEDDED_ROOTS: &str = "golang.org/x/crypto/x509roots/fallback";

/// How a TLS client loads its roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Library {
    Go,
    /// OpenSSL, and the C libraries judged by its defaults.
    OpenSsl,
}

impl Library {
    fn name(self) -> &'static str {
        match self {
            Self::Go => "Go's crypto/x509",
            Self::OpenSsl => "OpenSSL",
        }
    }

    fn failure(self) -> &'static str {
        match self {
            Self::Go => "x509: certificate signed by unknown authority",
            Self::OpenSsl => "certificate verify failed: unable to get local issuer certificate",
        }
    }
}

/// A program that makes TLS connections, and how we know.
struct Client {
    path: String,
    why: &'static str,
    library: Library,
}

fn tls_clients(cx: &ImageContext<'_>) -> Vec<Client> {
    let mut clients = Vec::new();
    for (file, _, facts, mode) in cx.elf_files() {
        if mode & 0o111 == 0 || !facts.is_program() {
            continue;
        }
        if let Some(go) = &facts.go
            && go.depends_on(EMBEDDED_ROOTS)
        {
            // Carries its own roots.
            continue;
        }
        if facts.go_crypto_tls {
            clients.push(Client {
                path: file,
                why: "crypto/tls",
                library: Library::Go,
            });
        }
    }
    for program in &cx.analysis().programs {
        let links_tls = program
            .outcome
            .objects
            .iter()
            .any(|o| TLS_LIBRARIES.iter().any(|l| o.name.starts_with(l)));
        if links_tls && !clients.iter().any(|c| c.path == program.path) {
            clients.push(Client {
                path: program.path.clone(),
                why: "links a TLS library",
                library: Library::OpenSsl,
            });
        }
    }
    // The entrypoint first: it is the one that matters most.
    if let Some((entry, _)) = cx.analysis().entrypoint.as_ref() {
        clients.sort_by_key(|c| c.path != *entry);
    }
    clients
}

/// One place a library read certificates from.
#[derive(Debug)]
struct Source {
    /// A file, or a directory with the number of its files read.
    place: String,
    files: usize,
    certificates: usize,
    expired: usize,
    earliest_expiry: Option<i64>,
    layer: usize,
}

/// What a library loads from the image.
#[derive(Debug, Default)]
struct Roots {
    sources: Vec<Source>,
    /// Places that exist but gave no certificate, described.
    empty: Vec<String>,
    /// `SSL_CERT_FILE` or `SSL_CERT_DIR` entries naming nothing.
    dangling: Vec<String>,
    /// Files already counted: a bundle inside a root directory is read twice but holds the
    /// same certificates.
    counted: Vec<NodeId>,
}

impl Roots {
    fn count(&self) -> usize {
        self.sources.iter().map(|s| s.certificates).sum()
    }

    fn expired(&self) -> usize {
        self.sources.iter().map(|s| s.expired).sum()
    }

    fn earliest_expiry(&self) -> Option<i64> {
        self.sources.iter().filter_map(|s| s.earliest_expiry).min()
    }

    fn describe(&self) -> String {
        self.sources
            .iter()
            .map(|s| {
                if s.files > 0 {
                    format!(
                        "{} file{} in {} ({} certificates)",
                        s.files,
                        if s.files == 1 { "" } else { "s" },
                        s.place,
                        s.certificates
                    )
                } else {
                    format!("{} ({} certificates)", s.place, s.certificates)
                }
            })
            .collect::<Vec<_>>()
            .join(" and ")
    }

    fn add(&mut self, place: String, files: &[(NodeId, &CertBundle)], layer: usize) {
        let files: Vec<(NodeId, &CertBundle)> = files
            .iter()
            .filter(|(node, _)| !self.counted.contains(node))
            .copied()
            .collect();
        self.counted.extend(files.iter().map(|(node, _)| *node));
        let certificates = files.iter().map(|(_, b)| b.certificates).sum();
        if certificates == 0 {
            self.empty.push(place);
            return;
        }
        self.sources.push(Source {
            files: if place_is_dir(&place) { files.len() } else { 0 },
            place,
            certificates,
            expired: files.iter().map(|(_, b)| b.expired).sum(),
            earliest_expiry: files.iter().filter_map(|(_, b)| b.earliest_expiry).min(),
            layer,
        });
    }
}

fn place_is_dir(place: &str) -> bool {
    place.ends_with('/')
}

const NO_CERTIFICATES: CertBundle = CertBundle {
    certificates: 0,
    unparsable: 0,
    expired: 0,
    earliest_expiry: None,
};

/// The certificates of the file at `file` (links followed), when it is a regular file.
fn bundle_at<'a>(cx: &ImageContext<'a>, file: &str) -> Option<(NodeId, &'a CertBundle)> {
    let node = regular_file(cx.tree, file)?;
    Some((
        node,
        cx.tree
            .entry(node)
            .fact
            .and_then(|f| f.pem())
            .unwrap_or(&NO_CERTIFICATES),
    ))
}

/// The entries directly in `dir` (links in its path followed): (name, node of the entry), in
/// byte order of names. The root's are not listed: its real path is empty, and no entry's
/// path starts with the `/` that would follow it.
fn dir_entries(cx: &ImageContext<'_>, dir: &str) -> Vec<(String, NodeId)> {
    let Ok(real) = cx.tree.resolve(dir.as_bytes(), true) else {
        return Vec::new();
    };
    if real == cx.tree.root() {
        return Vec::new();
    }
    cx.tree
        .children(real)
        .into_iter()
        .map(|(name, node)| (String::from_utf8_lossy(name).into_owned(), node))
        .collect()
}

/// A file the directory reading reaches: the entry's name, the file it resolves to.
fn dir_files<'a>(
    cx: &ImageContext<'a>,
    dir: &str,
    keep: &dyn Fn(&str, Option<&[u8]>) -> bool,
) -> Vec<(NodeId, &'a CertBundle)> {
    dir_entries(cx, dir)
        .into_iter()
        .filter(|(name, node)| keep(name, cx.tree.entry(*node).link))
        .filter_map(|(name, _)| bundle_at(cx, &format!("{}/{name}", dir.trim_end_matches('/'))))
        .collect()
}

fn env_list<'c>(cx: &ImageContext<'c>, name: &str) -> Option<Vec<&'c str>> {
    cx.config
        .env_var(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.split(':').filter(|d| !d.is_empty()).collect())
}

fn layer_of(cx: &ImageContext<'_>, node: Option<NodeId>) -> usize {
    node.map_or(0, |n| cx.tree.entry(n).layer as usize)
}

/// The roots Go's `loadSystemRoots` finds.
fn go_roots(cx: &ImageContext<'_>) -> Roots {
    let mut roots = Roots::default();
    let file_env = cx.config.env_var("SSL_CERT_FILE").filter(|f| !f.is_empty());
    let files: Vec<&str> = file_env.map_or_else(|| GO_FILES.to_vec(), |f| vec![f]);
    // The first file that can be read, whatever it holds.
    match files.iter().find_map(|f| bundle_at(cx, f).map(|b| (*f, b))) {
        Some((file, (node, bundle))) => {
            roots.add(file.to_owned(), &[(node, bundle)], layer_of(cx, Some(node)))
        }
        None => roots
            .dangling
            .extend(file_env.map(|f| format!("SSL_CERT_FILE={f}"))),
    }
    let dir_env = env_list(cx, "SSL_CERT_DIR");
    for dir in dir_env.clone().unwrap_or_else(|| GO_DIRS.to_vec()) {
        if !is_dir(cx.tree, dir) {
            if dir_env.is_some() {
                roots.dangling.push(format!("SSL_CERT_DIR entry {dir}"));
            }
            continue;
        }
        // readUniqueDirectoryEntries: a link to a name in the same directory is left out.
        let files = dir_files(cx, dir, &|_, link| link.is_none_or(|t| t.contains(&b'/')));
        let layer = layer_of(cx, cx.tree.resolve(dir.as_bytes(), true).ok());
        roots.add(format!("{}/", dir.trim_end_matches('/')), &files, layer);
    }
    roots
}

/// `5ad8a5d6.0`: the subject-hash name OpenSSL's `CApath` lookup opens.
fn is_hash_name(name: &str) -> bool {
    name.split_once('.').is_some_and(|(hash, n)| {
        hash.len() == 8
            && hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The roots OpenSSL's default verify paths reach.
fn openssl_roots(cx: &ImageContext<'_>) -> Roots {
    let mut roots = Roots::default();
    let file_env = cx.config.env_var("SSL_CERT_FILE").filter(|f| !f.is_empty());
    let files: Vec<&str> = file_env.map_or_else(|| OPENSSL_FILES.to_vec(), |f| vec![f]);
    let mut found_file = false;
    for file in files {
        if let Some((node, bundle)) = bundle_at(cx, file) {
            found_file = true;
            roots.add(file.to_owned(), &[(node, bundle)], layer_of(cx, Some(node)));
        }
    }
    if !found_file {
        roots
            .dangling
            .extend(file_env.map(|f| format!("SSL_CERT_FILE={f}")));
    }
    let dir_env = env_list(cx, "SSL_CERT_DIR");
    for dir in dir_env.clone().unwrap_or_else(|| OPENSSL_DIRS.to_vec()) {
        if !is_dir(cx.tree, dir) {
            if dir_env.is_some() {
                roots.dangling.push(format!("SSL_CERT_DIR entry {dir}"));
            }
            continue;
        }
        let files = dir_files(cx, dir, &|name, _| is_hash_name(name));
        let layer = layer_of(cx, cx.tree.resolve(dir.as_bytes(), true).ok());
        let place = format!("{}/", dir.trim_end_matches('/'));
        if files.is_empty() && !dir_entries(cx, dir).is_empty() {
            roots
                .empty
                .push(format!("{place} (no subject-hash links such as 5ad8a5d6.0, the only names OpenSSL opens there)"));
            continue;
        }
        roots.add(place, &files, layer);
    }
    roots
}

fn roots_for(cx: &ImageContext<'_>, library: Library) -> Roots {
    match library {
        Library::Go => go_roots(cx),
        Library::OpenSsl => openssl_roots(cx),
    }
}

fn env_set(cx: &ImageContext<'_>) -> bool {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| cx.config.env_var(v).is_some_and(|v| !v.is_empty()))
}

const FIX: &str = "Install the CA bundle in the final stage (apt-get install ca-certificates, apk add ca-certificates), \
                   or COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/; for Go, importing \
                   golang.org/x/crypto/x509roots/fallback embeds the roots in the binary.";

#[derive(Debug)]
pub struct CertsMissing;

impl Check for CertsMissing {
    fn id(&self) -> &'static str {
        "certs.missing"
    }

    fn severity(&self) -> Severity {
        Severity::High
    }

    fn summary(&self) -> &'static str {
        "No CA certificate where TLS libraries look for them"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        if env_set(cx) {
            // An explicit location is judged by certs.invalid.
            return Vec::new();
        }
        let clients = tls_clients(cx);
        let nothing = |roots: &Roots| roots.count() == 0 && roots.empty.is_empty();
        if clients.is_empty() {
            if !nothing(&go_roots(cx)) || !nothing(&openssl_roots(cx)) {
                return Vec::new();
            }
            return vec![Finding {
                program: None,
                id: self.id().into(),
                severity: Severity::Info,
                title: "No CA bundle".into(),
                message: "The image has no CA certificate; no program in it appears to make TLS connections, \
                          so nothing is known to break."
                    .into(),
                path: None,
                layer: None,
                remediation: FIX.into(),
            }];
        }
        let broken: Vec<&Client> = clients
            .iter()
            .filter(|c| nothing(&roots_for(cx, c.library)))
            .collect();
        let Some(client) = broken.first() else {
            return Vec::new();
        };
        let others = broken.len() - 1;
        let looked = match client.library {
            Library::Go => {
                "no bundle file and no certificate in /etc/ssl/certs, /etc/pki/tls/certs or /system/etc/security/cacerts"
            }
            Library::OpenSsl => {
                "no CAfile (cert.pem) and no hashed certificate in the CApath directories"
            }
        };
        vec![Finding {
            program: Some(client.path.clone()),
            id: self.id().into(),
            severity: self.severity(),
            title: "No CA bundle".into(),
            message: format!(
                "{} makes TLS connections ({}) but {} finds {looked}: its first HTTPS call fails with \"{}\".{}",
                client.path,
                client.why,
                client.library.name(),
                client.library.failure(),
                if others > 0 {
                    format!(" {others} more program(s) in the image are TLS clients too.")
                } else {
                    String::new()
                }
            ),
            path: Some(client.path.clone()),
            layer: regular_file(cx.tree, &client.path).map(|n| cx.tree.entry(n).layer as usize),
            remediation: FIX.into(),
        }]
    }
}

#[derive(Debug)]
pub struct CertsInvalid;

impl Check for CertsInvalid {
    fn id(&self) -> &'static str {
        "certs.invalid"
    }

    fn severity(&self) -> Severity {
        Severity::High
    }

    fn summary(&self) -> &'static str {
        "CA certificates that give TLS clients no usable root, or SSL_CERT_FILE/SSL_CERT_DIR pointing at nothing"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let fix = "Install ca-certificates in the final stage (or COPY a current bundle), and point SSL_CERT_FILE at it.";
        let clients = tls_clients(cx);
        // Each library once, the entrypoint's first; Go's rules when no client is known.
        let mut libraries: Vec<(Library, Option<&Client>)> = Vec::new();
        for client in &clients {
            if !libraries.iter().any(|(l, _)| *l == client.library) {
                libraries.push((client.library, Some(client)));
            }
        }
        if libraries.is_empty() {
            libraries.push((Library::Go, None));
        }
        let finding = |severity,
                       title: &str,
                       message: String,
                       path: Option<String>,
                       layer,
                       remediation: &str| Finding {
            program: None,
            id: self.id().into(),
            severity,
            title: title.into(),
            message,
            path,
            layer,
            remediation: remediation.into(),
        };
        let mut findings = Vec::new();
        for (library, client) in libraries {
            let roots = roots_for(cx, library);
            let who = client.map_or_else(
                || "TLS clients".to_owned(),
                |c| format!("{} ({})", c.path, library.name()),
            );
            let count = roots.count();
            if count == 0 {
                if roots.empty.is_empty() && roots.dangling.is_empty() {
                    // Nothing at all: certs.missing's finding.
                    continue;
                }
                let mut what: Vec<String> = roots
                    .dangling
                    .iter()
                    .map(|d| format!("{d} names nothing"))
                    .collect();
                what.extend(
                    roots
                        .empty
                        .iter()
                        .map(|e| format!("{e} holds no parseable certificate")),
                );
                findings.push(finding(
                    if client.is_some() { self.severity() } else { Severity::Medium },
                    "No usable CA certificate",
                    format!(
                        "{who} finds no CA certificate: {}. TLS verification fails as if there were none: \"{}\".",
                        what.join("; "),
                        library.failure()
                    ),
                    roots
                        .empty
                        .first()
                        .map(|e| e.split(' ').next().unwrap_or(e).trim_end_matches('/').to_owned())
                        .or_else(|| cx.config.env_var("SSL_CERT_FILE").map(str::to_owned)),
                    None,
                    fix,
                ));
                continue;
            }
            if !roots.dangling.is_empty() {
                findings.push(finding(
                    Severity::Low,
                    "SSL_CERT_FILE or SSL_CERT_DIR points at nothing",
                    format!(
                        "{} names nothing in the image; {who} still loads its roots from {}, so nothing breaks for it, \
                         but the setting misleads and other TLS libraries may rely on it alone.",
                        roots.dangling.join(" and "),
                        roots.describe()
                    ),
                    cx.config.env_var("SSL_CERT_FILE").map(str::to_owned),
                    None,
                    "Point SSL_CERT_FILE (or SSL_CERT_DIR) at the bundle the image has, or drop the setting.",
                ));
            }
            let first = &roots.sources[0];
            let place = first.place.trim_end_matches('/').to_owned();
            if roots.expired() == count {
                findings.push(finding(
                    self.severity(),
                    "CA bundle expired",
                    format!(
                        "{who} loads {count} certificates from {}, all expired: no server certificate can be verified.",
                        roots.describe()
                    ),
                    Some(place),
                    Some(first.layer),
                    fix,
                ));
            } else {
                findings.push(finding(
                    Severity::Info,
                    "CA bundle",
                    format!(
                        "{who} {} CA certificates from {}{}; the earliest expires on {}.",
                        if client.is_some() { "loads" } else { "load" },
                        roots.describe(),
                        if roots.expired() > 0 {
                            format!(" ({} expired)", roots.expired())
                        } else {
                            String::new()
                        },
                        roots.earliest_expiry().map(date).unwrap_or_default()
                    ),
                    Some(place),
                    Some(first.layer),
                    "Nothing to do; keep ca-certificates updated when rebuilding.",
                ));
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use drydock_facts::{ElfKind, FileFacts, GoBuildInfo, GoModule, elf_facts};
    use drydock_layers::{Change, EntryMeta, FileKind};

    use super::*;
    use crate::{ImageTree, RuntimeConfig};

    /// An image holding only a static Go TLS client, with or without embedded roots.
    fn go_client(embeds_roots: bool) -> ImageTree {
        let mut facts = elf_facts(b"\x7fELF");
        facts.kind = ElfKind::Executable;
        facts.go_crypto_tls = true;
        let mut go = GoBuildInfo {
            go_version: "go1.22.1".into(),
            ..GoBuildInfo::default()
        };
        if embeds_roots {
            go.deps.push(GoModule {
                path: EMBEDDED_ROOTS.into(),
                version: "v0.1.0".into(),
            });
        }
        facts.go = Some(go);
        let meta = EntryMeta {
            mode: 0o755,
            size: 1,
            ..EntryMeta::default()
        };
        let mut tree = ImageTree::new();
        tree.apply(
            0,
            vec![Change::Add {
                path: b"app/server".to_vec(),
                kind: FileKind::File,
                meta,
                link: None,
                fact: Some(FileFacts::Elf(Box::new(facts))),
            }],
        )
        .unwrap();
        tree
    }

    fn severities(tree: &ImageTree) -> Vec<Severity> {
        let config = RuntimeConfig {
            entrypoint: vec!["/app/server".into()],
            ..RuntimeConfig::default()
        };
        let cx = ImageContext::new(tree, &config, "linux/amd64", &[]);
        CertsMissing.run(&cx).iter().map(|f| f.severity).collect()
    }

    #[test]
    fn a_directory_lists_what_a_walk_of_every_entry_finds_in_it() {
        let config = RuntimeConfig::default();
        let mut listed = 0;
        for seed in 1..=30_u64 {
            let tree = crate::context::tests::random_tree(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
            let cx = ImageContext::new(&tree, &config, "linux/amd64", &[]);
            for dir in [
                "/",
                "",
                "usr",
                "/usr/lib",
                "usr/local/go",
                "etc/../usr",
                "app/src",
                "lib",
                "root/.cache",
                "a",
                "missing",
                "app/main.go",
            ] {
                // As the listing did before: every entry under the real path and a `/`.
                let walked: Vec<(String, NodeId)> = match tree.canonical(dir.as_bytes()) {
                    Err(_) => Vec::new(),
                    Ok(mut prefix) => {
                        prefix.push(b'/');
                        tree.entries()
                            .into_iter()
                            .filter_map(|(p, n)| {
                                let name = p.strip_prefix(prefix.as_slice())?;
                                (!name.is_empty() && !name.contains(&b'/'))
                                    .then(|| (String::from_utf8_lossy(name).into_owned(), n))
                            })
                            .collect()
                    }
                };
                assert_eq!(dir_entries(&cx, dir), walked, "seed {seed}, {dir}");
                listed += walked.len();
            }
        }
        assert!(listed > 100, "{listed}");
    }

    #[test]
    fn a_go_client_with_embedded_roots_needs_no_bundle() {
        assert_eq!(severities(&go_client(false)), [Severity::High]);
        assert_eq!(severities(&go_client(true)), [Severity::Info]);
    }
}
