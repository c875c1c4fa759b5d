//! Image references with the grammar docker uses.

use std::fmt;

/// The registry docker means when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's API actually answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const MAX_NAME: usize = 255;

/// `registry/repository[:tag][@digest]`, normalised: `alpine` is
/// `docker.io/library/alpine:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// What is wrong with a reference, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference `{input}`: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl Reference {
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let bad = |reason: String| ReferenceError {
            input: input.to_owned(),
            reason,
        };
        let rest = input.strip_prefix("docker://").unwrap_or(input);
        if rest.is_empty() {
            return Err(bad("it is empty".into()));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((name, digest)) => {
                validate_digest(digest).map_err(bad)?;
                (name, Some(digest.to_owned()))
            }
            None => (rest, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                (&rest[..split], Some(rest[split + 1..].to_owned()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            validate_tag(tag).map_err(bad)?;
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                validate_host(first).map_err(bad)?;
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if path.is_empty() {
            return Err(bad("no repository name".into()));
        }
        for component in path.split('/') {
            validate_component(component).map_err(bad)?;
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(bad(format!(
                "the name is longer than {MAX_NAME} characters"
            )));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API answers on (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What to ask the manifests endpoint for: the digest when there is one.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether the registry is on this machine, where docker allows plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn validate_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "the digest `{digest}` has no algorithm (expected sha256:<64 hex digits>)"
        ));
    };
    match algorithm {
        "sha256"
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(())
        }
        "sha256" => Err(format!(
            "the digest `{digest}` is not 64 lowercase hex digits"
        )),
        other => Err(format!(
            "unsupported digest algorithm `{other}` (drydock verifies sha256)"
        )),
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the tag `{tag}` is not valid (letters, digits, `_`, `.`, `-`; at most 128, not starting with `.` or `-`)"
        ))
    }
}

fn validate_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => (name, Some(port)),
        _ => (host, None),
    };
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err(format!(
            "the registry port `{port}` is not a number from 1 to 65535"
        ));
    }
    let valid = !name.is_empty()
        && (name.starts_with('[')
            || name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the registry host `{name}` is not a valid host name"
        ))
    }
}

fn validate_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err("the repository has an empty path component (`//` or a trailing `/`)".into());
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "repository names must be lowercase (`{component}`)"
        ));
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut valid = alnum(bytes[0]) && alnum(bytes[bytes.len() - 1]);
    let mut i = 0;
    while valid && i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // Separators: `.`, `_`, `__`, or any run of `-`.
        let run = bytes[i..].iter().take_while(|&&c| c == b).count();
        valid = match b {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        i += run;
    }
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{component}` is not a valid repository path component (lowercase letters and digits, separated by `.`, `_`, `__` or `-`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(
            parse("alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            parse("docker://alpine:3.20").to_string(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(parse("team/app").to_string(), "docker.io/team/app:latest");
        assert_eq!(parse("localhost/app").registry, "localhost");
        assert_eq!(
            parse("127.0.0.1:5000/ns/img:tag").to_string(),
            "127.0.0.1:5000/ns/img:tag"
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("registry.internal:5000/team/app@{digest}"));
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (None, Some(digest.as_str()))
        );
        assert_eq!(r.manifest_reference(), digest);
        let r = parse(&format!("app:1.2@{digest}"));
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(parse("alpine").api_host(), "registry-1.docker.io");
    }

    #[test]
    fn says_what_is_wrong() {
        let reason = |s: &str| Reference::parse(s).unwrap_err().reason;
        assert!(reason("Alpine").contains("lowercase"));
        assert!(reason("alpine:").contains("tag"));
        assert!(reason("alpine:-x").contains("tag"));
        assert!(reason("alpine@sha256:abc").contains("64"));
        assert!(reason("alpine@md5:abc").contains("unsupported digest algorithm"));
        assert!(reason("host:99999/app").contains("port"));
        assert!(reason("a//b").contains("empty path component"));
        assert!(reason("a/b-").contains("not a valid repository path component"));
        assert!(reason("").contains("empty"));
    }

    #[test]
    fn loopback_registries() {
        assert!(parse("localhost:5000/a").is_loopback());
        assert!(parse("127.0.0.1:5000/a").is_loopback());
        assert!(parse("127.1.2.3/a").is_loopback());
        assert!(!parse("registry.internal:5000/a").is_loopback());
        assert!(!parse("alpine").is_loopback());
    }
}
