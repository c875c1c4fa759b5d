//! Credentials in files, found while the layers stream. Precision first: public certificates,
//! example files, placeholders and the test data of language packages are not secrets. A
//! secret's value is never kept: only its kind and where it is.

/// What kind of credential a file holds, and where in it (never the value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretFacts {
    pub kind: String,
    /// The key or line that holds it, e.g. `API_TOKEN (line 2)`.
    pub detail: String,
}

/// Directories whose keys and credentials are test data or documentation.
const EXCLUDED_COMPONENTS: &[&[u8]] = &[
    b"testdata",
    b"test",
    b"tests",
    b"fixtures",
    b"examples",
    b"example",
    b"site-packages",
    b"dist-packages",
    b"node_modules",
    b"doc",
];
const EXCLUDED_PREFIXES: &[&[u8]] = &[
    b"usr/share/",
    b"usr/lib/go",
    b"usr/local/go/",
    b"etc/ssl/certs/",
];
const EXAMPLE_SUFFIXES: &[&str] = &[
    ".example",
    ".sample",
    ".template",
    ".dist",
    ".defaults",
    ".tmpl",
];
/// Key names that hold credentials.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH_KEY",
];
/// AWS's documented example secret key.
const AWS_EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn name(path: &[u8]) -> &str {
    let raw = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    std::str::from_utf8(raw).unwrap_or("")
}

fn excluded(path: &[u8]) -> bool {
    EXCLUDED_PREFIXES.iter().any(|p| path.starts_with(p))
        || path
            .split(|&b| b == b'/')
            .any(|c| EXCLUDED_COMPONENTS.contains(&c))
}

fn is_env_file(name: &str) -> bool {
    (name == ".env" || name.starts_with(".env.") || name.ends_with(".env"))
        && !EXAMPLE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Whether a file is worth reading for credentials, by its path alone.
pub fn candidate(path: &[u8]) -> bool {
    if excluded(path) {
        return false;
    }
    let name = name(path);
    is_env_file(name)
        || matches!(
            name,
            ".npmrc"
                | ".pypirc"
                | ".netrc"
                | "_netrc"
                | ".git-credentials"
                | "id_rsa"
                | "id_dsa"
                | "id_ecdsa"
                | "id_ed25519"
        )
        || (name == "credentials" && path.ends_with(b".aws/credentials"))
        || (name == "config.json" && path.ends_with(b".docker/config.json"))
        || name.ends_with(".json")
        || name.ends_with(".pem")
        || name.ends_with(".key")
}

/// A value a person would recognise as "fill me in", not a credential.
pub fn placeholder(value: &str) -> bool {
    let value = value.trim().trim_matches(['"', '\'']);
    let lower = value.to_ascii_lowercase();
    value.len() < 6
        || value.starts_with('$')
        || value.starts_with('<')
        || value.starts_with("{{")
        || value
            .chars()
            .all(|c| c == value.chars().next().unwrap_or(' '))
        || [
            "changeme",
            "change_me",
            "change-me",
            "your_",
            "your-",
            "example",
            "dummy",
            "placeholder",
            "xxxx",
            "todo",
            "redacted",
            "****",
            "secret",
            "password",
            "none",
            "null",
        ]
        .iter()
        .any(|p| lower == *p || (p.len() > 6 && lower.contains(p)) || lower.starts_with(p))
}

/// Whether an environment-style key names a credential.
pub fn secret_key(key: &str) -> bool {
    let upper = key.trim().to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
        && !upper.contains("_FILE")
        && !upper.ends_with("_PATH")
}

fn private_key(text: &str) -> Option<SecretFacts> {
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
            && label.ends_with("PRIVATE KEY")
        {
            return Some(SecretFacts {
                kind: format!("{} block", label.to_ascii_lowercase()),
                detail: format!("line {}", line_no + 1),
            });
        }
    }
    None
}

fn assignments(text: &str, separators: &[char]) -> Vec<(usize, String, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                return None;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let at = line.find(separators)?;
            Some((
                i + 1,
                line[..at].trim().to_owned(),
                line[at + 1..].trim().to_owned(),
            ))
        })
        .collect()
}

/// A history line with the values of credential-looking `KEY=VALUE` words replaced by `***`,
/// so that reports can quote what made a layer without quoting a secret.
pub fn redact(line: &str) -> String {
    line.split(' ')
        .map(|word| match word.split_once('=') {
            Some((key, value))
                if secret_key(key.trim_start_matches(['-', '|'])) && !value.is_empty() =>
            {
                format!("{key}=***")
            }
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scans a candidate file's content. `None` for anything that is not a real credential.
pub fn scan(path: &[u8], bytes: &[u8]) -> Option<SecretFacts> {
    if excluded(path) {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    let name = name(path);
    if let Some(found) = private_key(&text) {
        return Some(found);
    }
    let found = |kind: &str, detail: String| {
        Some(SecretFacts {
            kind: kind.to_owned(),
            detail,
        })
    };
    if is_env_file(name) {
        let hits: Vec<String> = assignments(&text, &['='])
            .into_iter()
            .filter(|(_, key, value)| secret_key(key) && !placeholder(value))
            .map(|(line, key, _)| format!("{key} (line {line})"))
            .collect();
        return (!hits.is_empty()).then(|| SecretFacts {
            kind: ".env credentials".into(),
            detail: hits.join(", "),
        });
    }
    match name {
        "credentials" => {
            return assignments(&text, &['='])
                .into_iter()
                .find(|(_, key, value)| {
                    key == "aws_secret_access_key"
                        && !placeholder(value)
                        && value.trim() != AWS_EXAMPLE_SECRET
                })
                .and_then(|(line, key, _)| {
                    found("AWS credentials", format!("{key} (line {line})"))
                });
        }
        ".npmrc" => {
            return assignments(&text, &['='])
                .into_iter()
                .find(|(_, key, value)| {
                    (key.ends_with("_authToken")
                        || key.ends_with("_auth")
                        || key.ends_with("_password"))
                        && !placeholder(value)
                })
                .and_then(|(line, key, _)| found("npm token", format!("{key} (line {line})")));
        }
        ".pypirc" => {
            return assignments(&text, &['=', ':'])
                .into_iter()
                .find(|(_, key, value)| key == "password" && !placeholder(value))
                .and_then(|(line, _, _)| found("PyPI password", format!("line {line}")));
        }
        ".netrc" | "_netrc" => {
            let words: Vec<&str> = text.split_whitespace().collect();
            return words
                .windows(2)
                .any(|w| w[0] == "password" && !placeholder(w[1]))
                .then(|| SecretFacts {
                    kind: "netrc password".into(),
                    detail: "a machine entry".into(),
                });
        }
        ".git-credentials" => {
            return text.lines().enumerate().find_map(|(i, line)| {
                let rest = line.split_once("://")?.1;
                let (userinfo, _) = rest.split_once('@')?;
                let (_, secret) = userinfo.split_once(':')?;
                (!placeholder(secret)).then(|| SecretFacts {
                    kind: "git credentials".into(),
                    detail: format!("line {}", i + 1),
                })
            });
        }
        _ => {}
    }
    if path.ends_with(b".docker/config.json") {
        let compact: String = text.split_whitespace().collect();
        let has_auth = compact
            .split("\"auth\":\"")
            .skip(1)
            .any(|rest| rest.split('"').next().is_some_and(|v| v.len() >= 8));
        return has_auth.then(|| SecretFacts {
            kind: "registry credentials".into(),
            detail: "auths".into(),
        });
    }
    if name.ends_with(".json") {
        let compact: String = text.split_whitespace().collect();
        if compact.contains("\"type\":\"service_account\"")
            && compact.contains("\"private_key\":\"-----BEGIN")
        {
            return found("GCP service-account key", "private_key".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_credentials_are_found() {
        assert!(scan(b"app/.env", b"DEBUG=1\nAPI_TOKEN=9f8e7d6c5b4a3f2e1d0c\n").is_some());
        assert!(scan(b"root/.aws/credentials", b"[default]\naws_access_key_id = AKIA0000\naws_secret_access_key = Zq3kP0v9mX2bN7cT5yR8wE1uI4oA6sD0fG3hJ5kL\n").is_some());
        assert!(
            scan(
                b"root/.npmrc",
                b"//registry.npmjs.org/:_authToken=npm_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z\n"
            )
            .is_some()
        );
        assert!(
            scan(
                b"root/.git-credentials",
                b"https://bob:ghp_abcdef1234567890abcdef@github.com\n"
            )
            .is_some()
        );
        let key = scan(
            b"srv/tls/server.key",
            b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        assert_eq!(key.kind, "ec private key block");
    }

    #[test]
    fn history_lines_are_redacted() {
        assert_eq!(
            redact("|1 GITHUB_TOKEN=ghp_abc /bin/sh -c make"),
            "|1 GITHUB_TOKEN=*** /bin/sh -c make"
        );
        assert_eq!(
            redact("ENV PATH=/usr/bin DEBUG=1"),
            "ENV PATH=/usr/bin DEBUG=1"
        );
    }

    #[test]
    fn look_alikes_are_not() {
        assert!(scan(b"app/.env", b"API_TOKEN=\nPASSWORD=changeme\nDB_PASSWORD=${DB_PASSWORD}\nSECRET_FILE=/run/secrets/x\n").is_none());
        assert!(!candidate(b"app/.env.example"));
        assert!(
            scan(
                b"root/.aws/credentials",
                b"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
            )
            .is_none()
        );
        assert!(
            scan(
                b"root/.npmrc",
                b"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"
            )
            .is_none()
        );
        assert!(!candidate(
            b"usr/lib/python3/dist-packages/tls/tests/key.pem"
        ));
        assert!(
            scan(
                b"etc/ssl/certs/ca.pem",
                b"-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"
            )
            .is_none()
        );
        assert!(scan(b"app/package.json", br#"{"name": "x", "private": true}"#).is_none());
        assert!(
            scan(
                b"root/.docker/config.json",
                br#"{"auths": {"registry.example": {}}, "credsStore": "desktop"}"#
            )
            .is_none()
        );
        assert!(
            scan(
                b"root/.netrc",
                b"machine api.example.com login bob password changeme
"
            )
            .is_none()
        );
    }
}
