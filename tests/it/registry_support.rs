//! Real servers on loopback for the registry tests: the CNCF distribution registry (Debian's
//! `docker-registry`), a token issuer whose certificate the registry trusts, and a
//! fault-injecting proxy. Images are pushed with `skopeo`.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// (method, path and query, whether it carried basic credentials, body).
pub type IssuerLog = Arc<Mutex<Vec<(String, String, bool, String)>>>;
/// (method, path, Range header).
pub type ProxyLog = Arc<Mutex<Vec<(String, String, Option<String>)>>>;
/// (method, target, lower-cased headers, body).
pub type Request = (String, String, HashMap<String, String>, Vec<u8>);

pub const USER: &str = "drydock";
pub const PASSWORD: &str = "s3cret-p4ss";
/// The refresh token the issuer accepts (a docker `identitytoken`).
pub const REFRESH_TOKEN: &str = "refresh-0123456789";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for(port: u16) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "port {port} never opened"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// How the registry authenticates.
pub enum Auth {
    Anonymous,
    Htpasswd,
    /// Bearer tokens from our issuer; `anonymous_pull` lets the issuer grant pulls without
    /// credentials.
    Token {
        anonymous_pull: bool,
    },
}

/// A running `docker-registry`.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub issuer: Option<Issuer>,
    /// The CA file to trust when the registry speaks TLS.
    pub ca: Option<PathBuf>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed CA and a leaf for 127.0.0.1 and localhost it signed, as PEM files.
pub(crate) fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "drydock test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    fs::write(&ca_path, ca.pem()).unwrap();
    fs::write(&cert_path, leaf.pem()).unwrap();
    fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

impl Registry {
    pub fn start(auth: Auth, tls: bool) -> Self {
        Self::start_with(auth, tls, "")
    }

    /// Starts a registry with `extra` appended to its configuration (top-level YAML, such as
    /// a `notifications:` block).
    pub fn start_with(auth: Auth, tls: bool, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        let mut ca = None;
        if tls {
            let (ca_path, cert, key) = tls_files(dir.path());
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            ca = Some(ca_path);
        }
        let mut issuer = None;
        match auth {
            Auth::Anonymous => {}
            Auth::Htpasswd => {
                let hash = bcrypt::hash(PASSWORD, 5).unwrap();
                let file = dir.path().join("htpasswd");
                fs::write(&file, format!("{USER}:{hash}\n")).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: drydock-test\n    path: {}\n",
                    file.display()
                ));
            }
            Auth::Token { anonymous_pull } => {
                let started = Issuer::start(dir.path(), anonymous_pull);
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: drydock-test-registry\n    issuer: drydock-test-issuer\n    rootcertbundle: {}\n",
                    started.port,
                    started.cert.display()
                ));
                issuer = Some(started);
            }
        }
        config.push_str(extra);
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry (Debian package docker-registry)");
        wait_for(port);
        Self {
            child,
            port,
            dir,
            issuer,
            ca,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes `source` (a skopeo image name) to `repository:tag` with skopeo.
    pub fn push(&self, source: &str, name: &str, extra: &[&str]) -> String {
        let target = format!("{}/{name}", self.host());
        let mut command = Command::new("skopeo");
        command
            .args([
                "copy",
                "--quiet",
                "--insecure-policy",
                "--dest-tls-verify=false",
            ])
            .args(extra);
        if self.issuer.is_some() || self.dir.path().join("htpasswd").exists() {
            command.args(["--dest-creds", &format!("{USER}:{PASSWORD}")]);
        }
        let output = command
            .arg(source)
            .arg(format!("docker://{target}"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "skopeo push: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        target
    }
}

/// A token service, as Docker Hub's: signs ES256 JWTs with a certificate in `x5c` that the
/// registry is configured to trust, so the registry itself validates every token.
pub struct Issuer {
    pub port: u16,
    pub cert: PathBuf,
    /// Every request: (method, path and query, whether it carried basic credentials, body).
    pub requests: IssuerLog,
    stop: Arc<AtomicBool>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Signer {
    key: aws_lc_rs::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
}

impl Signer {
    fn token(&self, subject: &str, repository: &str, actions: &[&str]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = serde_json::json!({
            "iss": "drydock-test-issuer",
            "sub": subject,
            "aud": "drydock-test-registry",
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{repository}"),
            "access": [{"type": "repository", "name": repository, "actions": actions}],
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = self.key.sign(&rng, signing_input.as_bytes()).unwrap();
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

fn query_params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one HTTP request: the request line, the headers (lower-cased names) and the body.
pub fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    stream.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        stream.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some((method, target, headers, body))
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Issuer {
    fn start(dir: &Path, anonymous_pull: bool) -> Self {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "drydock test token issuer");
        let cert = params.self_signed(&key_pair).unwrap();
        let cert_path = dir.join("issuer.pem");
        fs::write(&cert_path, cert.pem()).unwrap();
        let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
        )
        .unwrap();
        let signer = Arc::new(Signer {
            key,
            cert_der: cert.der().to_vec(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (requests.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let Some((method, target, headers, body)) = read_request(&mut reader) else {
                    continue;
                };
                let mut stream = stream;
                let basic = headers
                    .get("authorization")
                    .and_then(|h| h.strip_prefix("Basic "))
                    .map(|b| {
                        String::from_utf8(STANDARD.decode(b).unwrap_or_default())
                            .unwrap_or_default()
                    });
                let body_text = String::from_utf8_lossy(&body).into_owned();
                log.lock().unwrap().push((
                    method.clone(),
                    target.clone(),
                    basic.is_some(),
                    body_text.clone(),
                ));
                let query = target.split_once('?').map_or("", |(_, q)| q);
                let params = if method == "POST" {
                    query_params(&body_text)
                } else {
                    query_params(query)
                };
                let user = if method == "POST" {
                    (params.get("grant_type").map(String::as_str) == Some("refresh_token")
                        && params.get("refresh_token").map(String::as_str) == Some(REFRESH_TOKEN))
                    .then(|| USER.to_owned())
                } else {
                    basic
                        .filter(|b| *b == format!("{USER}:{PASSWORD}"))
                        .map(|_| USER.to_owned())
                };
                let scope = params.get("scope").cloned().unwrap_or_default();
                let mut parts = scope.splitn(3, ':');
                let (_, repository, requested) = (
                    parts.next(),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                let actions: Vec<&str> = match &user {
                    Some(_) => requested.split(',').filter(|a| !a.is_empty()).collect(),
                    None if anonymous_pull => {
                        requested.split(',').filter(|a| *a == "pull").collect()
                    }
                    None => {
                        respond(
                            &mut stream,
                            "401 Unauthorized",
                            r#"{"details":"bad credentials"}"#,
                        );
                        continue;
                    }
                };
                let token = signer.token(user.as_deref().unwrap_or(""), repository, &actions);
                let answer = if method == "POST" {
                    serde_json::json!({"access_token": token, "expires_in": 300})
                } else {
                    serde_json::json!({"token": token, "expires_in": 300})
                };
                respond(&mut stream, "200 OK", &answer.to_string());
            }
        });
        Self {
            port,
            cert: cert_path,
            requests,
            stop,
        }
    }
}

/// What the proxy does to the next matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Send this many bytes of the next blob body, then cut the connection.
    CutBlob(usize),
    /// Answer the next manifest request with 503.
    Unavailable,
    /// Answer the next manifest request with 429 and `Retry-After: 1`.
    TooMany,
    /// Flip a byte in every blob body.
    CorruptBlobs,
    /// Redirect every blob request to the "storage" listener on another port.
    RedirectBlobs,
    /// Hold every blob answer this long before it starts (a slow link), so that downloads
    /// that overlap are seen to.
    SlowBlobs(std::time::Duration),
}

/// A fault-injecting HTTP proxy in front of the registry, and a second listener standing for
/// the storage a registry redirects blobs to.
pub struct Proxy {
    pub port: u16,
    pub faults: Arc<Mutex<Vec<Fault>>>,
    /// Every request the proxy saw: (method, path, Range header).
    pub seen: ProxyLog,
    /// Authorization headers that reached the storage listener (must stay empty).
    pub leaked: Arc<Mutex<Vec<String>>>,
    pub storage_requests: Arc<Mutex<usize>>,
    /// Blob GETs in progress now, and the most there were at once.
    blobs_at_once: Arc<Mutex<(usize, usize)>>,
}

fn forward(
    upstream: u16,
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
    extra_auth: Option<&str>,
) -> Vec<u8> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{upstream}\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        if !matches!(name.as_str(), "host" | "connection" | "authorization") {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if let Some(auth) = extra_auth.or(headers.get("authorization").map(String::as_str)) {
        request.push_str(&format!("Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    up.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    response
}

fn split_response(response: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    (response[..end].to_vec(), response[end..].to_vec())
}

/// One blob GET in progress, uncounted when its answer is written.
struct Counted(Arc<Mutex<(usize, usize)>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

impl Proxy {
    pub fn start(registry_port: u16) -> Self {
        let faults: Arc<Mutex<Vec<Fault>>> = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let leaked = Arc::new(Mutex::new(Vec::new()));
        let storage_requests = Arc::new(Mutex::new(0));
        // The storage: serves redirected blob requests, recording any credential it is sent.
        let storage = TcpListener::bind("127.0.0.1:0").unwrap();
        let storage_port = storage.local_addr().unwrap().port();
        {
            let (leaked, count) = (leaked.clone(), storage_requests.clone());
            thread::spawn(move || {
                for stream in storage.incoming().flatten() {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let Some((method, target, headers, _)) = read_request(&mut reader) else {
                        continue;
                    };
                    *count.lock().unwrap() += 1;
                    if let Some(auth) = headers.get("authorization") {
                        leaked.lock().unwrap().push(auth.clone());
                    }
                    // A signed storage URL needs no registry credential: the storage holds its own.
                    let basic = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
                    let mut clean = headers.clone();
                    clean.remove("authorization");
                    let response = forward(registry_port, &method, &target, &clean, Some(&basic));
                    let mut stream = stream;
                    let _ = stream.write_all(&response);
                }
            });
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let blobs_at_once = Arc::new(Mutex::new((0, 0)));
        {
            let (faults, seen, at_once) = (faults.clone(), seen.clone(), blobs_at_once.clone());
            thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (faults, seen, at_once) = (faults.clone(), seen.clone(), at_once.clone());
                    thread::spawn(move || {
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let Some((method, target, headers, _)) = read_request(&mut reader) else {
                            return;
                        };
                        let mut stream = stream;
                        seen.lock().unwrap().push((
                            method.clone(),
                            target.clone(),
                            headers.get("range").cloned(),
                        ));
                        let is_blob = target.contains("/blobs/sha256:");
                        let is_manifest = target.contains("/manifests/");
                        let _counted = (is_blob && method == "GET").then(|| {
                            let mut counts = at_once.lock().unwrap();
                            counts.0 += 1;
                            counts.1 = counts.1.max(counts.0);
                            Counted(at_once.clone())
                        });
                        let slow = faults.lock().unwrap().iter().find_map(|f| match f {
                            Fault::SlowBlobs(delay) if is_blob => Some(*delay),
                            _ => None,
                        });
                        if let Some(delay) = slow {
                            thread::sleep(delay);
                        }
                        let fault = {
                            let mut faults = faults.lock().unwrap();
                            let index = faults.iter().position(|f| match f {
                                Fault::CutBlob(_) | Fault::CorruptBlobs | Fault::RedirectBlobs => {
                                    is_blob && method == "GET"
                                }
                                Fault::Unavailable | Fault::TooMany => is_manifest,
                                Fault::SlowBlobs(_) => false,
                            });
                            match index.map(|i| faults[i].clone()) {
                                // Kept until a blob long enough to cut comes by.
                                Some(
                                    f @ (Fault::CorruptBlobs
                                    | Fault::RedirectBlobs
                                    | Fault::CutBlob(_)),
                                ) => Some(f),
                                Some(f) => {
                                    faults.remove(index.unwrap());
                                    Some(f)
                                }
                                None => None,
                            }
                        };
                        match fault {
                            Some(Fault::Unavailable) => {
                                respond(&mut stream, "503 Service Unavailable", "{}")
                            }
                            Some(Fault::TooMany) => {
                                let _ = write!(
                                    stream,
                                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                );
                            }
                            Some(Fault::RedirectBlobs) => {
                                let _ = write!(
                                    stream,
                                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{storage_port}{target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                );
                            }
                            Some(Fault::CutBlob(after)) => {
                                let response =
                                    forward(registry_port, &method, &target, &headers, None);
                                let (head, body) = split_response(&response);
                                if body.len() <= after {
                                    let _ = stream.write_all(&response);
                                    return;
                                }
                                {
                                    let mut faults = faults.lock().unwrap();
                                    if let Some(i) =
                                        faults.iter().position(|f| matches!(f, Fault::CutBlob(_)))
                                    {
                                        faults.remove(i);
                                    }
                                }
                                let _ = stream.write_all(&head);
                                let _ = stream.write_all(&body[..after.min(body.len())]);
                                let _ = stream.flush();
                                let _ = stream.shutdown(std::net::Shutdown::Both);
                            }
                            Some(Fault::CorruptBlobs) => {
                                let response =
                                    forward(registry_port, &method, &target, &headers, None);
                                let (head, mut body) = split_response(&response);
                                if !body.is_empty()
                                    && String::from_utf8_lossy(&head).contains(" 200 ")
                                {
                                    let middle = body.len() / 2;
                                    body[middle] ^= 0xff;
                                }
                                let _ = stream.write_all(&head);
                                let _ = stream.write_all(&body);
                            }
                            Some(Fault::SlowBlobs(_)) | None => {
                                let response =
                                    forward(registry_port, &method, &target, &headers, None);
                                let _ = stream.write_all(&response);
                            }
                        }
                    });
                }
            });
        }
        Self {
            port,
            faults,
            seen,
            leaked,
            storage_requests,
            blobs_at_once,
        }
    }

    /// The most blob GETs that were in progress at once.
    pub fn most_blobs_at_once(&self) -> usize {
        self.blobs_at_once.lock().unwrap().1
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    pub fn blob_gets(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, t, _)| m == "GET" && t.contains("/blobs/"))
            .count()
    }
}

/// Runs drydock with `args` and an isolated HOME and cache: no credentials, no engine, no
/// cache shared with other tests; `stdin` is written to its standard input. Panics are
/// failures.
pub fn isolated(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (std::process::Output, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let mut command = crate::support::drydock();
    command
        .args(args)
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output, home)
}
