//! Credentials (docker and podman auth files, credential helpers, the command line) and the
//! `WWW-Authenticate` challenge. Secrets never reach a `Debug` or `Display` output.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// How long a `docker-credential-*` helper may take before we give up on it.
const HELPER_TIMEOUT: Duration = Duration::from_secs(15);

/// A secret string: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What we can authenticate with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken` in docker's config): exchanged at the token
    /// service, never sent to the registry itself.
    IdentityToken(Secret),
    /// A registry bearer token obtained elsewhere (Harbor hands its scanners one, already
    /// exchanged for the repository): sent as is, never exchanged.
    Bearer(Secret),
}

impl Credential {
    pub(crate) fn basic_header(username: &str, password: &str) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{username}:{password}"))
        )
    }
}

/// Where a credential came from, for messages (never the credential itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub credential: Credential,
    pub source: String,
}

/// Why looking for credentials failed.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct CredentialError {
    pub source_name: String,
    pub reason: String,
}

/// The keys an auth file may use for `registry`. Docker Hub has several names.
fn aliases(registry: &str) -> Vec<String> {
    if registry == crate::reference::DOCKER_HUB {
        [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ]
        .map(String::from)
        .to_vec()
    } else {
        vec![registry.to_owned()]
    }
}

/// `https://host:port/v1/` and `host:port` name the same registry in auth files.
fn normalise_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The auth files, in the order they are consulted: `$REGISTRY_AUTH_FILE` alone when set (as
/// skopeo and podman do); otherwise docker's config, then podman's auth files.
fn auth_files() -> Vec<(PathBuf, bool)> {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(file) = env("REGISTRY_AUTH_FILE") {
        return vec![(file, false)];
    }
    let mut files = Vec::new();
    let home = env("HOME");
    match env("DOCKER_CONFIG") {
        Some(dir) => files.push((dir.join("config.json"), true)),
        None => {
            if let Some(home) = &home {
                files.push((home.join(".docker/config.json"), true));
            }
        }
    }
    if let Some(runtime) = env("XDG_RUNTIME_DIR") {
        files.push((runtime.join("containers/auth.json"), false));
    }
    if let Some(home) = &home {
        files.push((home.join(".config/containers/auth.json"), false));
    }
    files
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Finds a credential for `registry` in the auth files and credential helpers.
pub fn find_credential(registry: &str) -> Result<Option<Found>, CredentialError> {
    for (path, is_docker) in auth_files() {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let shown = path.display().to_string();
        let file: AuthFile = serde_json::from_slice(&bytes).map_err(|e| CredentialError {
            source_name: shown.clone(),
            reason: format!("malformed auth file: {e}"),
        })?;
        if let Some(found) = from_file(&file, registry, &shown, is_docker)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn from_file(
    file: &AuthFile,
    registry: &str,
    shown: &str,
    is_docker: bool,
) -> Result<Option<Found>, CredentialError> {
    let names = aliases(registry);
    if let Some(helper) = names.iter().find_map(|n| file.cred_helpers.get(n)) {
        return run_helper(helper, &names[0]);
    }
    let entry = file
        .auths
        .iter()
        .find(|(key, _)| names.iter().any(|n| normalise_key(key) == normalise_key(n)));
    if let Some((_, entry)) = entry {
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Found {
                credential: Credential::IdentityToken(Secret::new(token)),
                source: shown.into(),
            }));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| CredentialError {
                    source_name: shown.into(),
                    reason: format!(
                        "the `auth` entry for {registry} is not base64 of user:password"
                    ),
                })?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| CredentialError {
                source_name: shown.into(),
                reason: format!("the `auth` entry for {registry} is not user:password"),
            })?;
            return Ok(Some(Found {
                credential: Credential::Basic {
                    username: username.into(),
                    password: Secret::new(password),
                },
                source: shown.into(),
            }));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Found {
                credential: Credential::Basic {
                    username: username.clone(),
                    password: Secret::new(password.clone()),
                },
                source: shown.into(),
            }));
        }
    }
    if is_docker && let Some(store) = &file.creds_store {
        return run_helper(store, &names[0]);
    }
    Ok(None)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Asks `docker-credential-NAME get` for `server`'s credential, with a timeout.
fn run_helper(name: &str, server: &str) -> Result<Option<Found>, CredentialError> {
    let program = format!("docker-credential-{name}");
    let fail = |reason: String| CredentialError {
        source_name: program.clone(),
        reason,
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(fail("not a valid credential helper name".into()));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(status) => break status,
            None if started.elapsed() > HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "no answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if !status.success() {
        // Helpers exit non-zero with "credentials not found in native keychain" when they
        // simply have nothing for this server: that is no credential, not an error.
        return Ok(None);
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout)
        .map_err(|_| fail("its answer is not the JSON credential helpers print".into()))?;
    let credential = if answer.username == "<token>" {
        Credential::IdentityToken(Secret::new(answer.secret))
    } else {
        Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    };
    Ok(Some(Found {
        credential,
        source: program,
    }))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(input: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    params
}

/// Reads a password from standard input (`--password-stdin`), without its final newline.
pub fn password_from(mut reader: impl Read) -> std::io::Result<Secret> {
    let mut password = String::new();
    reader.read_to_string(&mut password)?;
    Ok(Secret::new(password.trim_end_matches(['\n', '\r'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credential::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn reads_auth_entries() {
        let file: AuthFile = serde_json::from_str(
            r#"{"auths": {"https://reg.example:5000/v1/": {"auth": "dXNlcjpwYXNz"}, "tok.example": {"auth": "", "identitytoken": "refresh"}}}"#,
        )
        .unwrap();
        let found = from_file(&file, "reg.example:5000", "f", true)
            .unwrap()
            .unwrap();
        assert_eq!(
            found.credential,
            Credential::Basic {
                username: "user".into(),
                password: Secret::new("pass")
            }
        );
        let found = from_file(&file, "tok.example", "f", true).unwrap().unwrap();
        assert_eq!(
            found.credential,
            Credential::IdentityToken(Secret::new("refresh"))
        );
        assert!(
            from_file(&file, "other.example", "f", true)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn docker_hub_has_several_names() {
        let file: AuthFile =
            serde_json::from_str(r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}}"#)
                .unwrap();
        assert!(from_file(&file, "docker.io", "f", true).unwrap().is_some());
    }
}
