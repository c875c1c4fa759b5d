//! `certs.missing` and `certs.invalid`: the CA bundle TLS clients need to verify servers.
//! Without one, the first HTTPS call fails: "x509: certificate signed by unknown authority"
//! (Go), "unable to get local issuer certificate" (OpenSSL).

use drydock_facts::CertBundle;

use crate::runtime::{date, files_under, is_dir, regular_file};
use crate::{Check, Finding, ImageContext, Severity, TLS_LIBRARIES};

/// Go's `crypto/x509` root files (Linux) and OpenSSL's defaults, in the order Go tries them.
const BUNDLE_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/lib/ssl/cert.pem",
];
const BUNDLE_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs", "/usr/lib/ssl/certs"];
const EMBEDDED_ROOTS: &str = "golang.org/x/crypto/x509roots/fallback";

/// A program that makes TLS connections, and how we know.
struct Client {
    path: String,
    why: &'static str,
}

fn tls_clients(cx: &ImageContext<'_>) -> (Vec<Client>, Vec<String>) {
    let mut clients = Vec::new();
    let mut embedded = Vec::new();
    for (file, _, facts, mode) in cx.elf_files() {
        if mode & 0o111 == 0 || !facts.is_program() {
            continue;
        }
        if let Some(go) = &facts.go
            && go.depends_on(EMBEDDED_ROOTS)
        {
            embedded.push(file);
            continue;
        }
        if facts.go_crypto_tls {
            clients.push(Client {
                path: file,
                why: "crypto/tls",
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
            });
        }
    }
    // The entrypoint first: it is the one that matters most.
    if let Some((entry, _)) = cx.analysis().entrypoint.as_ref() {
        clients.sort_by_key(|c| c.path != *entry);
    }
    (clients, embedded)
}

/// The bundles the image offers where TLS libraries look: (path, facts).
fn bundles<'a>(cx: &ImageContext<'a>) -> Vec<(String, Option<&'a CertBundle>)> {
    let mut found = Vec::new();
    for file in BUNDLE_FILES {
        if let Some(node) = regular_file(cx.tree, file) {
            found.push((
                (*file).to_owned(),
                cx.tree.entry(node).fact.and_then(|f| f.pem()),
            ));
        }
    }
    for dir in BUNDLE_DIRS {
        if !is_dir(cx.tree, dir) {
            continue;
        }
        for (file, node) in files_under(cx, dir) {
            if let Some(pem) = cx.tree.entry(node).fact.and_then(|f| f.pem())
                && pem.certificates > 0
                && !found.iter().any(|(f, _)| *f == file)
            {
                found.push((file, Some(pem)));
                break;
            }
        }
    }
    found
}

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
        "No CA certificate bundle where TLS libraries look for one"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        if cx.config.env_var("SSL_CERT_FILE").is_some()
            || cx.config.env_var("SSL_CERT_DIR").is_some()
        {
            // An explicit location is judged by certs.invalid.
            return Vec::new();
        }
        if !bundles(cx).is_empty() {
            // A bundle is there; whether it is any good is certs.invalid's to say.
            return Vec::new();
        }
        let (clients, _) = tls_clients(cx);
        let fix = "Install the CA bundle in the final stage (apt-get install ca-certificates, apk add ca-certificates), \
                   or COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/; for Go, importing \
                   golang.org/x/crypto/x509roots/fallback embeds the roots in the binary.";
        let Some(client) = clients.first() else {
            return vec![Finding {
                program: None,
                id: self.id().into(),
                severity: Severity::Info,
                title: "No CA bundle".into(),
                message: "The image has no CA certificate bundle; no program in it appears to make TLS connections, \
                          so nothing is known to break."
                    .into(),
                path: None,
                layer: None,
                remediation: fix.into(),
            }];
        };
        let others = clients.len() - 1;
        vec![Finding {
            program: Some(client.path.clone()),
            id: self.id().into(),
            severity: self.severity(),
            title: "No CA bundle".into(),
            message: format!(
                "{} makes TLS connections ({}) but the image has no CA bundle: its first HTTPS call fails with \
                 \"{}\".{}",
                client.path,
                client.why,
                if client.why == "crypto/tls" {
                    "x509: certificate signed by unknown authority"
                } else {
                    "certificate verify failed: unable to get local issuer certificate"
                },
                if others > 0 {
                    format!(" {others} more program(s) in the image are TLS clients too.")
                } else {
                    String::new()
                }
            ),
            path: Some(client.path.clone()),
            layer: regular_file(cx.tree, &client.path).map(|n| cx.tree.entry(n).layer as usize),
            remediation: fix.into(),
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
        "A CA bundle that holds no usable certificate, or SSL_CERT_FILE pointing at nothing"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let fix = "Install ca-certificates in the final stage (or COPY a current bundle), and point SSL_CERT_FILE at it.";
        if let Some(file) = cx.config.env_var("SSL_CERT_FILE") {
            match regular_file(cx.tree, file) {
                None => findings.push(Finding {
                    program: None,
                    id: self.id().into(),
                    severity: self.severity(),
                    title: "SSL_CERT_FILE points at nothing".into(),
                    message: format!(
                        "The config sets SSL_CERT_FILE={file}, but the image has no such file: TLS clients that honour it \
                         (Go, OpenSSL) find no roots and fail with \"certificate signed by unknown authority\"."
                    ),
                    path: Some(file.to_owned()),
                    layer: None,
                    remediation: fix.into(),
                }),
                Some(node) => {
                    if cx.tree.entry(node).fact.and_then(|f| f.pem()).is_none_or(|p| p.certificates == 0) {
                        findings.push(self.empty(file, cx.tree.entry(node).layer as usize, fix));
                    }
                }
            }
        }
        let found = bundles(cx);
        for (file, pem) in &found {
            let layer = regular_file(cx.tree, file)
                .map(|n| cx.tree.entry(n).layer as usize)
                .unwrap_or(0);
            match pem {
                Some(pem) if pem.certificates > 0 && pem.expired == pem.certificates => findings.push(Finding {
                    program: None,
                    id: self.id().into(),
                    severity: self.severity(),
                    title: "CA bundle expired".into(),
                    message: format!("{file} holds {} certificates, all expired: no server certificate can be verified.", pem.certificates),
                    path: Some(file.clone()),
                    layer: Some(layer),
                    remediation: fix.into(),
                }),
                Some(pem) if pem.certificates > 0 => findings.push(Finding {
                    program: None,
                    id: self.id().into(),
                    severity: Severity::Info,
                    title: "CA bundle".into(),
                    message: format!(
                        "{file} holds {} CA certificates{}; the earliest expires on {}.",
                        pem.certificates,
                        if pem.expired > 0 { format!(" ({} expired)", pem.expired) } else { String::new() },
                        pem.earliest_expiry.map(date).unwrap_or_default()
                    ),
                    path: Some(file.clone()),
                    layer: Some(layer),
                    remediation: "Nothing to do; keep ca-certificates updated when rebuilding.".into(),
                }),
                _ if BUNDLE_FILES.contains(&file.as_str()) => findings.push(self.empty(file, layer, fix)),
                _ => {}
            }
            if pem.is_some_and(|p| p.certificates > 0) {
                // The first good bundle is what Go and OpenSSL use.
                break;
            }
        }
        findings
    }
}

impl CertsInvalid {
    fn empty(&self, file: &str, layer: usize, fix: &str) -> Finding {
        Finding {
            program: None,
            id: self.id().into(),
            severity: self.severity(),
            title: "CA bundle without certificates".into(),
            message: format!(
                "{file} exists but holds no parseable certificate: TLS verification fails as if it were missing."
            ),
            path: Some(file.to_owned()),
            layer: Some(layer),
            remediation: fix.into(),
        }
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
    fn a_go_client_with_embedded_roots_needs_no_bundle() {
        assert_eq!(severities(&go_client(false)), [Severity::High]);
        assert_eq!(severities(&go_client(true)), [Severity::Info]);
    }
}
