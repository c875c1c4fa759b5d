//! Local engines (Docker, and podman's Docker-compatible API): the image export
//! (`GET /images/{name}/get`, a `docker save` tar) streamed over the engine's socket.
//!
//! HTTP/1.1 is spoken by hand here: two GET requests over a Unix socket do not justify an
//! async HTTP stack with a Unix-socket connector.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RegistryError;

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Unix(PathBuf),
    Tcp(String),
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl Engine {
    /// `$DOCKER_HOST`, else docker's socket, else podman's (rootless, then rootful), if one
    /// of them exists.
    pub fn discover() -> Option<Self> {
        if let Some(host) = std::env::var_os("DOCKER_HOST").filter(|h| !h.is_empty()) {
            let host = host.to_string_lossy().into_owned();
            if let Some(path) = host.strip_prefix("unix://") {
                return Some(Self::Unix(path.into()));
            }
            if let Some(addr) = host.strip_prefix("tcp://") {
                return Some(Self::Tcp(addr.trim_end_matches('/').to_owned()));
            }
            return None;
        }
        let mut candidates = vec![PathBuf::from("/var/run/docker.sock")];
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
            candidates.push(Path::new(&runtime).join("podman/podman.sock"));
        }
        candidates.push(PathBuf::from("/run/podman/podman.sock"));
        candidates.into_iter().find(|p| p.exists()).map(Self::Unix)
    }

    fn connect(&self) -> io::Result<Box<dyn ReadWrite>> {
        match self {
            Self::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                stream.set_read_timeout(Some(Duration::from_secs(300)))?;
                Ok(Box::new(stream))
            }
            Self::Tcp(addr) => {
                let stream = TcpStream::connect(addr)?;
                stream.set_read_timeout(Some(Duration::from_secs(300)))?;
                Ok(Box::new(stream))
            }
        }
    }

    fn get(&self, path: &str) -> Result<(u16, Box<dyn Read + Send>), RegistryError> {
        let fail = |reason: String| RegistryError::Transport {
            url: format!("{self}{path}"),
            reason,
        };
        let mut stream = self.connect().map_err(|e| fail(e.to_string()))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: drydock\r\nConnection: close\r\n\r\n")
            .map_err(|e| fail(e.to_string()))?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .map_err(|e| fail(e.to_string()))?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail(format!("not an HTTP answer: {}", status_line.trim())))?;
        let mut chunked = false;
        let mut length = None;
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| fail(e.to_string()))?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    "content-length" => length = value.parse::<u64>().ok(),
                    _ => {}
                }
            }
        }
        let body: Box<dyn Read + Send> = if chunked {
            Box::new(Chunked {
                inner: reader,
                remaining: 0,
                done: false,
            })
        } else if let Some(length) = length {
            Box::new(reader.take(length))
        } else {
            Box::new(reader)
        };
        Ok((status, body))
    }

    /// Whether the engine holds `name`.
    pub fn has_image(&self, name: &str) -> Result<bool, RegistryError> {
        let (status, _) = self.get(&format!("/images/{}/json", encode(name)))?;
        Ok(status == 200)
    }

    /// The engine's export of `name`: a `docker save` tar, streamed.
    pub fn export(&self, name: &str) -> Result<Box<dyn Read + Send>, RegistryError> {
        let what = format!("{self}: image {name}");
        let (status, body) = self.get(&format!("/images/{}/get", encode(name)))?;
        match status {
            200 => Ok(body),
            404 => Err(RegistryError::NotFound { what }),
            other => {
                let mut message = String::new();
                let _ = body.take(4096).read_to_string(&mut message);
                Err(RegistryError::Status {
                    what,
                    status: format!("{other} {}", message.trim()),
                })
            }
        }
    }
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// Image names go into the path as they are, but for bytes a URL path cannot hold.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `Transfer-Encoding: chunked` body.
struct Chunked<R> {
    inner: R,
    remaining: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                // The CRLF after the previous chunk.
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.remaining = u64::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "a malformed chunk size")
            })?;
            if self.remaining == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the engine closed the export early",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunked_bodies() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        let mut out = String::new();
        Chunked {
            inner: &body[..],
            remaining: 0,
            done: false,
        }
        .read_to_string(&mut out)
        .unwrap();
        assert_eq!(out, "hello, world");
    }

    #[test]
    fn a_truncated_chunk_is_an_error() {
        let body = b"a\r\nhel";
        let mut out = String::new();
        assert!(
            Chunked {
                inner: &body[..],
                remaining: 0,
                done: false
            }
            .read_to_string(&mut out)
            .is_err()
        );
    }
}
