//! What `drydock serve` is told: a TOML file, with the command line's flags laid over it by the
//! front end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drydock_registry::{Credential, Secret};

use crate::ServeError;

/// What an admission request gets for an image that has no verdict yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMiss {
    /// Refuse the workload until the image is scanned.
    #[default]
    Deny,
    /// Admit it with a warning.
    Warn,
    /// Admit it silently.
    Allow,
}

impl std::str::FromStr for OnMiss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "deny" => Ok(Self::Deny),
            "warn" => Ok(Self::Warn),
            "allow" => Ok(Self::Allow),
            other => Err(format!("`{other}` is not deny, warn or allow")),
        }
    }
}

/// Where `drydock serve` keeps the layer facts cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactsCacheMode {
    /// In the store: every replica sharing it walks a layer once.
    #[default]
    Store,
    /// Beside the blob cache in `cache_dir`: this node's own.
    Local,
    /// None: every layer of every image walked.
    Off,
}

/// How to reach one registry host.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `host[:port]` as references name it (`registry.corp:5000`).
    pub host: String,
    pub username: Option<String>,
    /// The password itself; prefer `password_file`.
    pub password: Option<String>,
    /// A file whose content (trailing newline removed) is the password.
    pub password_file: Option<PathBuf>,
    /// Plain HTTP or unverified TLS for this host.
    #[serde(default)]
    pub insecure: bool,
    /// Extra CA files for this host, beside the global ones.
    #[serde(default)]
    pub ca_certs: Vec<PathBuf>,
}

/// Faults the test suite injects; never set in production.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Testing {
    /// Answer 500 to this many registry notification deliveries, after storing them (as a
    /// crash between the commit and the answer would).
    #[serde(default)]
    pub fail_hooks: u32,
    /// Hold every scan this long before it starts, so that a test can interrupt one.
    #[serde(default)]
    pub scan_delay_ms: u64,
}

/// The whole configuration.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where to listen (`0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// The store: a SQLite database file (created with its directory), or a PostgreSQL
    /// connection URL (`postgres://user:password@host:5432/db?connect_timeout=5`) that any
    /// number of replicas share.
    pub store: PathBuf,
    /// Scans at once.
    pub workers: usize,
    /// Bearer tokens / API keys accepted on every endpoint but the probes.
    pub tokens: Vec<String>,
    /// Files holding one token each (Kubernetes secrets mounted as files).
    pub token_files: Vec<PathBuf>,
    /// Serve without any token (only for a loopback test bed).
    pub allow_unauthenticated: bool,
    /// Answer `/k8s/validate` without a token: the API server sends none unless its
    /// admission configuration gives it a kubeconfig; put TLS and a network policy in front.
    pub admission_without_token: bool,
    /// The policy file (`drydock.toml` format) every scan runs under.
    pub policy: Option<PathBuf>,
    /// PEM files of CA certificates trusted for every registry.
    pub ca_certs: Vec<PathBuf>,
    /// Credentials and TLS settings per registry host.
    pub registries: Vec<RegistryConfig>,
    /// The registry a notification is about when its event names no host, or always when
    /// `hook_registry_override` is set (a registry that reports an address drydock cannot use).
    pub hook_registry: Option<String>,
    pub hook_registry_override: bool,
    /// What admission does for an image with no verdict.
    pub on_miss: OnMiss,
    /// The time an admission answer may take, whatever the registries do.
    pub admission_budget_ms: u64,
    /// How long a tag resolved to a digest is reused.
    pub resolve_cache_seconds: u64,
    /// How long a worker holds a job before another may take it over; extended while it runs.
    pub lease_seconds: u64,
    /// Attempts at one job before it is failed.
    pub max_attempts: u32,
    /// How long SIGTERM waits for running scans before putting them back in the queue.
    pub shutdown_grace_seconds: u64,
    /// Where verified blobs are cached (default: `blobs` beside a SQLite store, `blobs` in the
    /// working directory with PostgreSQL).
    pub cache_dir: Option<PathBuf>,
    /// This node's name in job leases (default: the host name).
    pub node: Option<String>,
    /// After each scan, push these documents as OCI referrers of the scanned manifest, as
    /// `drydock scan --attach` does (`report`, `sarif`, `intoto`); empty: attach nothing. The
    /// registry credentials configured for the host need push access.
    pub attach: Vec<AttachKindName>,
    /// Where the layer facts cache lives (`store`, `local`, `off`): a rebuilt image costs
    /// only its new layers.
    pub facts_cache: FactsCacheMode,
    /// Entries of the facts cache in the store that no scan used for this many days are
    /// deleted.
    pub facts_keep_days: u64,
    /// Memory (MiB, estimated) this replica keeps for snapshots of the base layers it applied,
    /// so that the next image on the same base starts from a copy (see docs/serve.md); 0
    /// keeps none. Used with the facts cache only.
    pub snapshot_memory_mib: u64,
    pub testing: Testing,
}

/// A document `attach` pushes, as the configuration file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachKindName {
    Report,
    Sarif,
    Intoto,
}

impl AttachKindName {
    pub fn kind(self) -> drydock_scan::AttachKind {
        match self {
            Self::Report => drydock_scan::AttachKind::Report,
            Self::Sarif => drydock_scan::AttachKind::Sarif,
            Self::Intoto => drydock_scan::AttachKind::Intoto,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            store: PathBuf::from("drydock-serve.db"),
            workers: 2,
            tokens: Vec::new(),
            token_files: Vec::new(),
            allow_unauthenticated: false,
            admission_without_token: false,
            policy: None,
            ca_certs: Vec::new(),
            registries: Vec::new(),
            hook_registry: None,
            hook_registry_override: false,
            on_miss: OnMiss::Deny,
            admission_budget_ms: 2000,
            resolve_cache_seconds: 60,
            lease_seconds: 600,
            max_attempts: 3,
            shutdown_grace_seconds: 25,
            cache_dir: None,
            node: None,
            attach: Vec::new(),
            facts_cache: FactsCacheMode::Store,
            facts_keep_days: 30,
            snapshot_memory_mib: 256,
            testing: Testing::default(),
        }
    }
}

/// Debug output names what is set, never a secret: no password (the registries', the one in
/// a PostgreSQL URL) and no token.
impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("password_file", &self.password_file)
            .field("insecure", &self.insecure)
            .field("ca_certs", &self.ca_certs)
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match self.store_url() {
            Some(url) => redact_url_password(url),
            None => self.store.display().to_string(),
        };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("store", &store)
            .field("workers", &self.workers)
            .field("tokens", &format!("({} hidden)", self.tokens.len()))
            .field("token_files", &self.token_files)
            .field("policy", &self.policy)
            .field("ca_certs", &self.ca_certs)
            .field("registries", &self.registries)
            .field("on_miss", &self.on_miss)
            .field("cache_dir", &self.cache_dir)
            .field("facts_cache", &self.facts_cache)
            .field("snapshot_memory_mib", &self.snapshot_memory_mib)
            .field("attach", &self.attach)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:(hidden)@host/db`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') {
                ":(hidden)"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
    .replace(&password_param(url), "password=(hidden)")
}

/// The `password=…` key word of a URL's query, or a string no URL holds.
fn password_param(url: &str) -> String {
    url.split(['?', '&'])
        .find(|p| p.starts_with("password="))
        .map_or_else(|| "\u{0}".to_owned(), str::to_owned)
}

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ServeError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServeError::Config {
            file: path.display().to_string(),
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, file: &str) -> Result<Self, ServeError> {
        toml::from_str(text).map_err(|e| ServeError::Config {
            file: file.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    /// The store's PostgreSQL URL, when it is one.
    pub fn store_url(&self) -> Option<&str> {
        self.store
            .to_str()
            .filter(|store| crate::postgres::is_postgres_url(store))
    }

    pub(crate) fn admission_budget(&self) -> Duration {
        Duration::from_millis(self.admission_budget_ms.max(100))
    }

    pub(crate) fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds.max(10))
    }

    /// Every accepted token: the inline ones and those in token files.
    pub(crate) fn all_tokens(&self) -> Result<Vec<Secret>, ServeError> {
        let mut tokens: Vec<Secret> = self.tokens.iter().map(Secret::new).collect();
        for file in &self.token_files {
            let text = std::fs::read_to_string(file).map_err(|e| ServeError::Config {
                file: file.display().to_string(),
                message: format!("cannot read the token file: {e}"),
            })?;
            let token = text.trim();
            if !token.is_empty() {
                tokens.push(Secret::new(token));
            }
        }
        tokens.retain(|t| !t.expose().is_empty());
        Ok(tokens)
    }

    /// The settings for one registry host.
    pub(crate) fn registry(&self, host: &str) -> Option<&RegistryConfig> {
        self.registries.iter().find(|r| r.host == host)
    }

    /// The credential configured for `host`, if any.
    pub(crate) fn credential(&self, host: &str) -> Result<Option<Credential>, ServeError> {
        let Some(registry) = self.registry(host) else {
            return Ok(None);
        };
        let Some(username) = &registry.username else {
            return Ok(None);
        };
        let password = match (&registry.password, &registry.password_file) {
            (Some(password), _) => password.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| ServeError::Config {
                    file: file.display().to_string(),
                    message: format!("cannot read the password file: {e}"),
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            (None, None) => return Ok(None),
        };
        Ok(Some(Credential::Basic {
            username: username.clone(),
            password: Secret::new(password),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_what_it_names_and_defaults_fill_the_rest() {
        let config = Config::parse(
            r#"
listen = "127.0.0.1:9000"
store = "/var/lib/drydock/serve.db"
workers = 4
tokens = ["abc"]
on_miss = "warn"
[[registries]]
host = "registry.corp:5000"
username = "ci"
password = "pw"
"#,
            "serve.toml",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.workers, 4);
        assert_eq!(config.on_miss, OnMiss::Warn);
        assert_eq!(config.admission_budget_ms, 2000);
        assert_eq!(config.facts_cache, FactsCacheMode::Store);
        assert_eq!(
            Config::parse("facts_cache = \"local\"", "serve.toml")
                .unwrap()
                .facts_cache,
            FactsCacheMode::Local
        );
        let credential = config.credential("registry.corp:5000").unwrap().unwrap();
        assert!(matches!(credential, Credential::Basic { username, .. } if username == "ci"));
        assert!(config.credential("other").unwrap().is_none());
        assert_eq!(config.store_url(), None);
        let config = Config::parse(
            "store = \"postgres://drydock@db.corp:5432/drydock\"",
            "serve.toml",
        )
        .unwrap();
        assert_eq!(
            config.store_url(),
            Some("postgres://drydock@db.corp:5432/drydock")
        );
    }

    #[test]
    fn debug_output_hides_every_secret() {
        let config = Config::parse(
            r#"
store = "postgres://drydock:s3cret-pw@db.corp:5432/drydock?sslmode=require&password=other-pw"
tokens = ["tok-123"]
[[registries]]
host = "registry.corp:5000"
username = "ci"
password = "reg-pw"
"#,
            "serve.toml",
        )
        .unwrap();
        let shown = format!("{config:?}");
        for secret in ["s3cret-pw", "other-pw", "tok-123", "reg-pw"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://drydock:(hidden)@db.corp:5432/drydock?sslmode=require"));
        assert!(shown.contains("registry.corp:5000"));
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_name() {
        let error = Config::parse("listne = \"x\"", "serve.toml").unwrap_err();
        assert!(error.to_string().contains("serve.toml"), "{error}");
    }
}
