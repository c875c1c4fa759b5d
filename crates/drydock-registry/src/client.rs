//! A read-only client for the OCI distribution API on `reqwest`'s blocking client.
//!
//! Written here rather than taken from `oci-client` because the gate needs what that crate does
//! not give: docker and podman credentials with identity-token refresh, a blob stream that
//! resumes with `Range` after a cut connection, hard size caps on documents, retries that
//! honour `Retry-After`, and error classes that map to exit codes.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE, RETRY_AFTER, WWW_AUTHENTICATE};

use crate::auth::{Challenge, Credential, Secret, parse_challenge};
use crate::error::RegistryError;
use crate::reference::Reference;

/// Documents (manifests, indexes, configs) larger than this are refused.
pub const MAX_DOCUMENT: u64 = 16 << 20;
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5";

/// How a client connects.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// PEM files of extra CAs to trust, beside the system's.
    pub ca_certs: Vec<PathBuf>,
    /// Allow plain HTTP and unverified TLS to any registry.
    pub insecure: bool,
    /// A credential given on the command line; otherwise auth files and helpers are read.
    pub credential: Option<Credential>,
    /// Attempts per request on connection errors, 5xx and 429.
    pub attempts: Option<u32>,
    /// Ask for `push` as well as `pull` (for attaching referrers).
    pub push: bool,
}

#[derive(Debug, Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// Bearer tokens by scope, reused for every request of that scope.
    tokens: HashMap<String, Secret>,
}

/// A connection to one repository of one registry.
#[derive(Debug)]
pub struct RegistryClient {
    http: Client,
    base: String,
    reference: Reference,
    credential: Option<Credential>,
    auth: Mutex<AuthState>,
    attempts: u32,
    push: bool,
}

/// A URL as logs show it: without its query (pre-signed blob URLs carry credentials there)
/// and without user information.
fn loggable(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn describe_error(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

fn is_certificate_error(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("certificate")
        || lower.contains("unknownissuer")
        || lower.contains("invalid peer")
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6)))
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(60)))
}

fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) use drydock_source::sha256_digest;

enum HttpClientError {
    Registry(RegistryError),
    Build(reqwest::Error),
}

/// The HTTP clients built so far, by what they trust (the CA files' contents) and whether
/// they verify at all. Building one loads the system's CA certificates and starts a thread;
/// a server scanning image after image reuses one, with its open connections.
type ClientKey = (Vec<Vec<u8>>, bool);
static CLIENTS: std::sync::LazyLock<Mutex<Vec<(ClientKey, Client)>>> =
    std::sync::LazyLock::new(Mutex::default);

/// How many differently configured clients are kept.
const KEPT_CLIENTS: usize = 8;

/// What a client is kept under: the contents of the CA files `options` names, and whether it
/// verifies at all.
fn client_key(options: &ClientOptions) -> Result<ClientKey, HttpClientError> {
    let mut pems = Vec::with_capacity(options.ca_certs.len());
    for path in &options.ca_certs {
        let pem = std::fs::read(path).map_err(|e| {
            HttpClientError::Registry(RegistryError::Invalid {
                what: path.display().to_string(),
                reason: format!("cannot read the CA file: {e}"),
            })
        })?;
        pems.push(pem);
    }
    Ok((pems, options.insecure))
}

/// The client kept under `key`, if one was built.
fn kept_client(key: &ClientKey) -> Option<Client> {
    let clients = CLIENTS.lock().ok()?;
    clients
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, client)| client.clone())
}

/// Whether an HTTP client for `options` was built already (and is kept): a caller on a
/// thread whose priority it must not pass on to the client's own thread asks first.
pub fn has_client(options: &ClientOptions) -> bool {
    client_key(options).is_ok_and(|key| kept_client(&key).is_some())
}

fn http_client(options: &ClientOptions) -> Result<Client, HttpClientError> {
    let key = client_key(options)?;
    if let Some(client) = kept_client(&key) {
        return Ok(client);
    }
    let mut builder = Client::builder()
        .timeout(None)
        .connect_timeout(Duration::from_secs(30))
        .referer(false)
        .user_agent(concat!("drydock/", env!("CARGO_PKG_VERSION")));
    for (path, pem) in options.ca_certs.iter().zip(&key.0) {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            HttpClientError::Registry(RegistryError::Invalid {
                what: path.display().to_string(),
                reason: format!("not a PEM certificate bundle: {e}"),
            })
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    if options.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    let client = builder.build().map_err(HttpClientError::Build)?;
    if let Ok(mut clients) = CLIENTS.lock() {
        if clients.len() >= KEPT_CLIENTS {
            clients.remove(0);
        }
        clients.push((key, client.clone()));
    }
    Ok(client)
}

impl RegistryClient {
    /// Connects to the registry of `reference`: builds the HTTP client, chooses HTTPS (or, for
    /// a loopback registry or with `insecure`, plain HTTP when the registry does not speak TLS),
    /// and finds the credential to use.
    pub fn connect(reference: &Reference, options: &ClientOptions) -> Result<Self, RegistryError> {
        let http = http_client(options).map_err(|e| match e {
            HttpClientError::Registry(e) => e,
            HttpClientError::Build(e) => RegistryError::Transport {
                url: reference.registry.clone(),
                reason: describe_error(&e),
            },
        })?;
        let credential = match &options.credential {
            Some(credential) => Some(credential.clone()),
            None => {
                crate::auth::find_credential(&reference.registry)?.map(|found| found.credential)
            }
        };
        let host = reference.api_host().to_owned();
        let mut client = Self {
            http,
            base: format!("https://{host}"),
            reference: reference.clone(),
            credential,
            auth: Mutex::new(AuthState::default()),
            attempts: options.attempts.unwrap_or(5).max(1),
            push: options.push,
        };
        if reference.is_loopback() || options.insecure {
            // Docker's rule: loopback registries may speak plain HTTP. Prefer TLS when the
            // registry offers it, and never fall back on a certificate error.
            match client.http.get(format!("https://{host}/v2/")).send() {
                Ok(_) => {}
                Err(e) => {
                    let message = describe_error(&e);
                    if is_certificate_error(&message) && !options.insecure {
                        return Err(RegistryError::Tls {
                            host,
                            reason: message,
                        });
                    }
                    client.base = format!("http://{host}");
                }
            }
        }
        Ok(client)
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    fn scope(&self) -> String {
        let actions = if self.push { "pull,push" } else { "pull" };
        format!("repository:{}:{actions}", self.reference.repository)
    }

    fn auth_header(&self) -> Option<String> {
        if let Some(Credential::Bearer(token)) = &self.credential {
            return Some(format!("Bearer {}", token.expose()));
        }
        let state = self.auth.lock().ok()?;
        match &state.challenge {
            Some(Challenge::Basic) => match &self.credential {
                Some(Credential::Basic { username, password }) => {
                    Some(Credential::basic_header(username, password.expose()))
                }
                _ => None,
            },
            Some(Challenge::Bearer { .. }) => state
                .tokens
                .get(&self.scope())
                .map(|t| format!("Bearer {}", t.expose())),
            None => None,
        }
    }

    /// Answers a 401: remembers the challenge and, for a token service, gets a token.
    fn authenticate(&self, response: &Response, what: &str) -> Result<(), RegistryError> {
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let challenge = parse_challenge(header).ok_or_else(|| RegistryError::Unauthorized {
            what: what.into(),
            reason: "the registry asks for authentication it does not describe".into(),
        })?;
        log::debug!(
            "{what}: the registry asks for {} authentication",
            match &challenge {
                Challenge::Basic => "basic",
                Challenge::Bearer { .. } => "token",
            }
        );
        if matches!(self.credential, Some(Credential::Bearer(_))) {
            return Err(RegistryError::Unauthorized {
                what: what.into(),
                reason: "the registry refused the bearer token it was given (expired, or without access to this repository)".into(),
            });
        }
        match &challenge {
            Challenge::Basic => {
                if !matches!(self.credential, Some(Credential::Basic { .. })) {
                    return Err(RegistryError::Unauthorized {
                        what: what.into(),
                        reason: "the registry needs a user name and password (docker login, or --username with --password-stdin)".into(),
                    });
                }
            }
            Challenge::Bearer { realm, service, .. } => {
                let token = self.fetch_token(realm, service.as_deref(), what)?;
                if let Ok(mut state) = self.auth.lock() {
                    state.tokens.insert(self.scope(), token);
                }
            }
        }
        if let Ok(mut state) = self.auth.lock() {
            state.challenge = Some(challenge);
        }
        Ok(())
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        what: &str,
    ) -> Result<Secret, RegistryError> {
        let scope = self.scope();
        let denied = |reason: String| RegistryError::Unauthorized {
            what: what.into(),
            reason,
        };
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| denied(format!("the token service `{realm}` is not a URL: {e}")))?;
        let response = match &self.credential {
            Some(Credential::IdentityToken(refresh)) => {
                // A refresh token is exchanged (OAuth2), never presented to the registry.
                let mut form = format!(
                    "grant_type=refresh_token&client_id=drydock&scope={}&refresh_token={}",
                    percent_encode(&scope),
                    percent_encode(refresh.expose())
                );
                if let Some(service) = service {
                    form.push_str(&format!("&service={}", percent_encode(service)));
                }
                self.http
                    .post(url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
            }
            credential => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", &scope);
                }
                let mut request = self.http.get(url);
                if let Some(Credential::Basic { username, password }) = credential {
                    request = request.basic_auth(username, Some(password.expose()));
                }
                request.send()
            }
        }
        .map_err(|e| RegistryError::Transport {
            url: realm.into(),
            reason: describe_error(&e),
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(denied(format!("the token service answered {status}")));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let body = read_capped(response, 1 << 20, realm)?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| denied("the token service's answer is not JSON".into()))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| denied("the token service gave no token".into()))
    }

    /// Sends a request built by `build`, authenticating on a 401 and retrying connection
    /// errors, 5xx and 429 with backoff (honouring `Retry-After`).
    fn send(
        &self,
        what: &str,
        build: &dyn Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            let mut request = build(&self.http);
            if let Some(header) = self.auth_header() {
                request = request.header(AUTHORIZATION, header);
            }
            let response = match request.send() {
                Ok(response) => response,
                Err(e) => {
                    let message = describe_error(&e);
                    if is_certificate_error(&message) {
                        return Err(RegistryError::Tls {
                            host: self.reference.registry.clone(),
                            reason: message,
                        });
                    }
                    attempt += 1;
                    if attempt >= self.attempts {
                        return Err(RegistryError::Transport {
                            url: what.into(),
                            reason: message,
                        });
                    }
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
            };
            let status = response.status();
            log::debug!("{what}: {status} from {}", loggable(response.url()));
            if status == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                self.authenticate(&response, what)?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(RegistryError::Unauthorized {
                    what: what.into(),
                    reason: status.to_string(),
                });
            }
            if status == StatusCode::NOT_FOUND {
                return Err(RegistryError::NotFound { what: what.into() });
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                attempt += 1;
                if attempt >= self.attempts {
                    return Err(RegistryError::Status {
                        what: what.into(),
                        status: status.to_string(),
                    });
                }
                let wait = retry_after(&response).unwrap_or_else(|| backoff(attempt));
                log::info!("{what}: {status}, retrying in {wait:.1?}");
                std::thread::sleep(wait);
                continue;
            }
            if status.is_client_error() {
                return Err(RegistryError::Rejected {
                    what: what.into(),
                    status: status.as_u16(),
                    reason: rejection_reason(status, response),
                });
            }
            if !status.is_success() {
                return Err(RegistryError::Status {
                    what: what.into(),
                    status: status.to_string(),
                });
            }
            return Ok(response);
        }
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!(
            "{}/v2/{}/{kind}/{reference}",
            self.base, self.reference.repository
        )
    }

    /// Fetches a manifest or index by tag or digest: its bytes, media type and digest. A digest
    /// reference is verified, and so is the registry's `Docker-Content-Digest`.
    pub fn manifest(
        &self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, String), RegistryError> {
        let url = self.url("manifests", reference);
        let what = format!(
            "{}/{}:{reference}",
            self.reference.registry, self.reference.repository
        );
        let response = self.send(&what, &|http| http.get(&url).header(ACCEPT, MANIFEST_TYPES))?;
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let claimed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(response, MAX_DOCUMENT, &what)?;
        let digest = sha256_digest(&bytes);
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_owned())
        } else {
            claimed.filter(|c| c.starts_with("sha256:"))
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(RegistryError::Invalid {
                what,
                reason: format!("digest mismatch: expected {expected}, got {digest}"),
            });
        }
        Ok((bytes, media_type, digest))
    }

    /// Fetches a small blob (a config) whole, verified against `digest`.
    pub fn blob_bytes(&self, digest: &str, limit: u64) -> Result<Vec<u8>, RegistryError> {
        let url = self.url("blobs", digest);
        let response = self.send(digest, &|http| http.get(&url))?;
        let bytes = read_capped(response, limit, digest)?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(RegistryError::Invalid {
                what: digest.into(),
                reason: format!("digest mismatch: got {actual}"),
            });
        }
        Ok(bytes)
    }

    fn what(&self, reference: &str) -> String {
        format!(
            "{}/{}:{reference}",
            self.reference.registry, self.reference.repository
        )
    }

    /// Whether the repository holds this manifest or blob (`kind` is `manifests` or `blobs`).
    pub fn exists(&self, kind: &str, digest: &str) -> Result<bool, RegistryError> {
        let url = self.url(kind, digest);
        let accept = MANIFEST_TYPES;
        match self.send(&self.what(digest), &|http| {
            http.head(&url).header(ACCEPT, accept)
        }) {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads a small blob in one request pair (POST for a session, PUT with the digest),
    /// unless the repository has it already. Returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = sha256_digest(bytes);
        if self.exists("blobs", &digest)? {
            return Ok(digest);
        }
        let what = format!(
            "uploading {digest} to {}",
            self.what("").trim_end_matches(':')
        );
        let start = self.url("blobs", "uploads/");
        let response = self.send(&what, &|http| http.post(&start))?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Invalid {
                what: what.clone(),
                reason: "the registry opened an upload without a Location".into(),
            })?;
        let mut url = reqwest::Url::parse(&self.base)
            .and_then(|base| base.join(location))
            .map_err(|e| RegistryError::Invalid {
                what: what.clone(),
                reason: format!("the upload Location is not a URL: {e}"),
            })?;
        url.query_pairs_mut().append_pair("digest", &digest);
        let body = bytes.to_vec();
        self.send(&what, &|http| {
            http.put(url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
        })?;
        Ok(digest)
    }

    /// Stores a manifest or index under `reference` (a tag or its digest). Returns its digest
    /// and the `OCI-Subject` the registry answered with, when it processes `subject` itself.
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(String, Option<String>), RegistryError> {
        let digest = sha256_digest(bytes);
        let url = self.url("manifests", reference);
        let what = self.what(reference);
        let body = bytes.to_vec();
        let response = self.send(&what, &|http| {
            http.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(body.clone())
        })?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(claimed) = header("docker-content-digest")
            && claimed != digest
        {
            return Err(RegistryError::Invalid {
                what,
                reason: format!("the registry stored {claimed} for a manifest of digest {digest}"),
            });
        }
        Ok((digest, header("oci-subject")))
    }

    /// Deletes a manifest by digest. False when it was already gone.
    pub fn delete_manifest(&self, digest: &str) -> Result<bool, RegistryError> {
        let url = self.url("manifests", digest);
        match self.send(&self.what(digest), &|http| http.delete(&url)) {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The OCI 1.1 referrers API: the index of manifests whose `subject` is `digest`, pages
    /// joined; `None` when the registry does not serve the API (it answers 404 or another
    /// 4xx there, as distribution 2.8 does).
    pub fn referrers(&self, digest: &str) -> Result<Option<Vec<serde_json::Value>>, RegistryError> {
        let mut url = self.url("referrers", digest);
        let what = format!("referrers of {}", self.what(digest));
        let mut descriptors = Vec::new();
        for _page in 0..64 {
            let response = match self.send(&what, &|http| {
                http.get(&url)
                    .header(ACCEPT, "application/vnd.oci.image.index.v1+json")
            }) {
                Ok(response) => response,
                Err(RegistryError::NotFound { .. } | RegistryError::Rejected { .. }) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let bytes = read_capped(response, MAX_DOCUMENT, &what)?;
            let index: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
                    what: what.clone(),
                    reason: format!("not an image index: {e}"),
                })?;
            match index.get("manifests") {
                Some(serde_json::Value::Array(page)) => descriptors.extend(page.iter().cloned()),
                Some(serde_json::Value::Null) | None => {}
                Some(_) => {
                    return Err(RegistryError::Invalid {
                        what,
                        reason: "`manifests` is not a list".into(),
                    });
                }
            }
            match next {
                Some(link) => {
                    url = reqwest::Url::parse(&self.base)
                        .and_then(|base| base.join(&link))
                        .map_err(|e| RegistryError::Invalid {
                            what: what.clone(),
                            reason: format!("the next page's Link is not a URL: {e}"),
                        })?
                        .to_string();
                }
                None => return Ok(Some(descriptors)),
            }
        }
        Err(RegistryError::Invalid {
            what,
            reason: "more than 64 pages of referrers".into(),
        })
    }

    /// Opens a blob as a stream that resumes where it was cut.
    pub fn blob(&self, digest: &str) -> Result<BlobStream<'_>, RegistryError> {
        let url = self.url("blobs", digest);
        let response = self.send(digest, &|http| http.get(&url))?;
        Ok(BlobStream {
            client: self,
            url,
            digest: digest.into(),
            response,
            offset: 0,
            resumes: 0,
        })
    }
}

/// A 4xx answer in words: its status and the distribution error codes of its body
/// (`MANIFEST_BLOB_UNKNOWN: blob unknown to registry`), escaped and cut short.
fn rejection_reason(status: StatusCode, response: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let body = read_capped(response, 64 << 10, "").unwrap_or_default();
    let codes: Vec<String> = serde_json::from_slice::<Errors>(&body)
        .map(|e| {
            e.errors
                .into_iter()
                .map(|e| {
                    let text = format!("{}: {}", e.code, e.message);
                    text.chars().filter(|c| !c.is_control()).take(200).collect()
                })
                .collect()
        })
        .unwrap_or_default();
    if codes.is_empty() {
        status.to_string()
    } else {
        format!("{status} ({})", codes.join("; "))
    }
}

/// The target of `rel="next"` in a `Link` header: `</v2/a/referrers/sha256:…?n=2>; rel="next"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().trim_start_matches("rel=").trim_matches('"') == "next")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

fn read_capped(response: Response, limit: u64, what: &str) -> Result<Vec<u8>, RegistryError> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(RegistryError::Invalid {
            what: what.into(),
            reason: format!("larger than the {limit}-byte limit"),
        });
    }
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Transport {
            url: what.into(),
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::Invalid {
            what: what.into(),
            reason: format!("larger than the {limit}-byte limit"),
        });
    }
    Ok(bytes)
}

/// How many times a blob download may be resumed.
const MAX_RESUMES: u32 = 8;

/// A blob download. When the connection breaks, it asks for the rest with a `Range` request
/// and carries on where it stopped, so the reader above sees one unbroken stream.
#[derive(Debug)]
pub struct BlobStream<'a> {
    client: &'a RegistryClient,
    url: String,
    digest: String,
    response: Response,
    offset: u64,
    resumes: u32,
}

impl BlobStream<'_> {
    fn resume(&mut self, cause: &io::Error) -> io::Result<()> {
        let offset = self.offset;
        let url = self.url.clone();
        let response = self
            .client
            .send(&self.digest, &|http| {
                http.get(&url).header(RANGE, format!("bytes={offset}-"))
            })
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("{cause}; resuming: {e}"),
                )
            })?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let start = response
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the registry resumed at the wrong offset",
                    ));
                }
                self.response = response;
            }
            _ => {
                // No range support: start over and skip what was already read.
                let mut whole = response;
                io::copy(&mut (&mut whole).take(offset), &mut io::sink())?;
                self.response = whole;
            }
        }
        Ok(())
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.response.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if self.resumes < MAX_RESUMES => {
                    self.resumes += 1;
                    self.resume(&e)?;
                }
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!(
                            "downloading {}: {e} (gave up after {MAX_RESUMES} resumes)",
                            self.digest
                        ),
                    ));
                }
            }
        }
    }
}
