//! `secret.file` and `secret.config`: credentials shipped in the image. A file a later layer
//! deletes is still in the layer that added it, and anyone who pulls the image can extract it.
//! Values are never printed: only the kind and the place.

use drydock_facts::secrets::{placeholder, secret_key};
use drydock_layers::FileKind;

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct SecretFile;

impl Check for SecretFile {
    fn id(&self) -> &'static str {
        "secret.file"
    }

    fn severity(&self) -> Severity {
        Severity::High
    }

    fn summary(&self) -> &'static str {
        "Credentials in a file of any layer (private keys, .env, cloud, registry and package-manager tokens)"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        cx.secrets
            .iter()
            .map(|secret| {
                let still_there = cx
                    .tree
                    .resolve(secret.path.as_bytes(), false)
                    .is_ok_and(|n| cx.tree.entry(n).kind == FileKind::File && cx.tree.entry(n).layer as usize == secret.layer);
                let made_by = cx
                    .layers
                    .get(secret.layer)
                    .and_then(|l| l.created_by.as_deref())
                    .map(|c| format!(", added by {}", c.trim()))
                    .unwrap_or_default();
                let message = if still_there {
                    format!(
                        "{} holds credentials, {} ({}): anyone who can pull the image can read them (layer {}{made_by}).",
                        secret.path, secret.kind, secret.detail, secret.layer
                    )
                } else {
                    format!(
                        "{} held credentials, {} ({}). A later layer deletes or replaces the file, but it is still extractable from layer {}{made_by}.",
                        secret.path, secret.kind, secret.detail, secret.layer
                    )
                };
                Finding {
                    program: None,
                    id: self.id().into(),
                    severity: self.severity(),
                    title: "Secret in the image".into(),
                    message,
                    path: Some(secret.path.clone()),
                    layer: Some(secret.layer),
                    remediation: "Rotate the credential, then keep it out of the build context (.dockerignore) and pass it \
                                  with RUN --mount=type=secret (BuildKit) or at run time; deleting it in a later layer does \
                                  not remove it."
                        .into(),
                }
            })
            .collect()
    }
}

#[derive(Debug)]
pub struct SecretConfig;

/// `KEY=VALUE` words of a history line, with their keys.
fn assignments(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split_whitespace().filter_map(|word| {
        let (key, value) = word.split_once('=')?;
        let key = key.trim_start_matches(['-', '|']);
        (!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .then_some((key, value))
    })
}

impl Check for SecretConfig {
    fn id(&self) -> &'static str {
        "secret.config"
    }

    fn severity(&self) -> Severity {
        Severity::High
    }

    fn summary(&self) -> &'static str {
        "Credential-looking values in the config Env or the build history (ENV, ARG)"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let remediation = "Rotate it; pass secrets at run time (docker run -e, orchestrator secrets) or to the build with \
                           RUN --mount=type=secret, never with ENV or ARG, which the image config and history keep.";
        for entry in &cx.config.env {
            let Some((key, value)) = entry.split_once('=') else {
                continue;
            };
            if secret_key(key) && !placeholder(value) {
                seen.push(key.to_owned());
                findings.push(Finding {
                    program: None,
                    id: self.id().into(),
                    severity: self.severity(),
                    title: "Secret in the image config".into(),
                    message: format!(
                        "The image config sets {key} to a credential-looking value: `docker inspect` shows it to anyone who can pull the image."
                    ),
                    path: None,
                    layer: None,
                    remediation: remediation.into(),
                });
            }
        }
        for (index, line) in cx.config.history.iter().enumerate() {
            for (key, value) in assignments(line) {
                if !secret_key(key) || placeholder(value) || seen.iter().any(|k| k == key) {
                    continue;
                }
                seen.push(key.to_owned());
                findings.push(Finding {
                    program: None,
                    id: self.id().into(),
                    severity: self.severity(),
                    title: "Secret in the build history".into(),
                    message: format!(
                        "History entry {index} of the image records {key} with a credential-looking value (an ENV, or an ARG \
                         used by a RUN): `docker history --no-trunc` shows it."
                    ),
                    path: None,
                    layer: None,
                    remediation: remediation.into(),
                });
            }
        }
        findings
    }
}
