//! TLS to PostgreSQL, with rustls: the `postgres` crate speaks TLS through a connector its
//! caller gives, and the crates that adapt rustls to it are not among this workspace's
//! dependencies, so the adapter (three small trait impls) is written here.
//!
//! What the URL's `sslmode` means with it: `disable`, plain TCP; `prefer` (the default), TLS
//! when the server offers it, plain when it does not; `require`, TLS or no connection. Whenever
//! TLS is used the server's certificate is verified (its chain against the system's roots and
//! the configuration's `ca_certs`, its name against the URL's host), as libpq's
//! `verify-full` does: a database that answers with a certificate nobody vouches for is
//! refused, never trusted because it speaks TLS.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::Socket;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};

use crate::store::StoreError;

/// Makes a verified rustls connection for each host the URL names.
#[derive(Clone)]
pub struct RustlsMake(Arc<rustls::ClientConfig>);

impl RustlsMake {
    /// Trusts the system's roots and the PEM files `ca_certs`.
    pub fn new(ca_certs: &[PathBuf]) -> Result<Self, StoreError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            log::debug!("system CA certificates: {error}");
        }
        let (added, _) = roots.add_parsable_certificates(native.certs);
        for path in ca_certs {
            let text = std::fs::read(path)
                .map_err(|e| StoreError(format!("CA certificates {}: {e}", path.display())))?;
            let certs: Vec<_> = rustls_pemfile_certs(&text)
                .map_err(|e| StoreError(format!("CA certificates {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(StoreError(format!(
                    "CA certificates {}: no certificate in the file",
                    path.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| StoreError(format!("CA certificates {}: {e}", path.display())))?;
            }
        }
        log::debug!(
            "PostgreSQL TLS: {added} system root(s), {} file(s) of ca_certs",
            ca_certs.len()
        );
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self(Arc::new(config)))
    }
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(
    text: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e:?}"))
}

impl MakeTlsConnect<Socket> for RustlsMake {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    /// Called for every host before connecting, a Unix socket's too (with an empty name:
    /// PostgreSQL never speaks TLS there, so the handshake below is not reached); a name TLS
    /// cannot verify fails only if a handshake is attempted.
    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        Ok(RustlsConnect {
            config: Arc::clone(&self.0),
            name: ServerName::try_from(domain.to_owned())
                .map_err(|e| format!("`{domain}` is not a host name TLS can verify: {e}")),
        })
    }
}

/// One connection's handshake.
pub struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self
                .name
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let connector = tokio_rustls::TlsConnector::from(self.config);
            let tls = connector.connect(name, stream).await?;
            Ok(RustlsStream(tls))
        })
    }
}

/// A TLS connection to the database.
pub struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    /// No channel binding: SCRAM-SHA-256 without `-PLUS`, which every server accepts unless
    /// told to require binding.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
