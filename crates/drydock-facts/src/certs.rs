//! Certificate bundles: how many CA certificates a PEM file holds, which fail to parse, and
//! when they expire.

use x509_parser::pem::Pem;

/// What a PEM file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CertBundle {
    /// Parseable certificates.
    pub certificates: usize,
    /// PEM `CERTIFICATE` blocks that are not valid X.509.
    pub unparsable: usize,
    /// Certificates already expired at the time of the scan.
    pub expired: usize,
    /// The earliest `notAfter` among the certificates, as Unix seconds.
    pub earliest_expiry: Option<i64>,
}

/// Paths where TLS libraries look for bundles (Go's `crypto/x509` list and OpenSSL's
/// defaults), whose content is kept whatever its first bytes are.
pub const BUNDLE_FILES: &[&str] = &[
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/ssl/ca-bundle.pem",
    "etc/pki/tls/cacert.pem",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "etc/ssl/cert.pem",
    "usr/lib/ssl/cert.pem",
    "usr/local/ssl/cert.pem",
];

/// Directories whose files TLS libraries read one by one (Go's root directories, OpenSSL's
/// `CApath`) or that they link into (Debian's and Alpine's certificate stores): their files
/// are read whatever their first bytes are, since a certificate file may open with comments.
pub const CERT_DIRS: &[&str] = &[
    "etc/ssl/certs/",
    "etc/pki/tls/certs/",
    "system/etc/security/cacerts/",
    "usr/share/ca-certificates/",
    "usr/local/share/ca-certificates/",
];

pub(crate) fn wants(path: &[u8]) -> bool {
    BUNDLE_FILES.iter().any(|f| f.as_bytes() == path)
        || CERT_DIRS.iter().any(|d| path.starts_with(d.as_bytes()))
}

/// Counts and checks the certificates of a PEM bundle.
pub fn parse_bundle(bytes: &[u8]) -> CertBundle {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut bundle = CertBundle::default();
    for pem in Pem::iter_from_buffer(bytes) {
        let Ok(pem) = pem else { break };
        if pem.label != "CERTIFICATE" && pem.label != "TRUSTED CERTIFICATE" {
            continue;
        }
        match pem.parse_x509() {
            Ok(cert) => {
                bundle.certificates += 1;
                let not_after = cert.validity().not_after.timestamp();
                if not_after < now {
                    bundle.expired += 1;
                }
                bundle.earliest_expiry = Some(
                    bundle
                        .earliest_expiry
                        .map_or(not_after, |e: i64| e.min(not_after)),
                );
            }
            Err(_) => bundle.unparsable += 1,
        }
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_host_bundle() {
        let Ok(bytes) = std::fs::read("/etc/ssl/certs/ca-certificates.crt") else {
            return;
        };
        let bundle = parse_bundle(&bytes);
        assert!(bundle.certificates > 50, "{bundle:?}");
        assert!(bundle.earliest_expiry.is_some());
    }

    #[test]
    fn garbage_is_no_certificate() {
        let bundle = parse_bundle(
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        );
        assert_eq!((bundle.certificates, bundle.unparsable), (0, 1));
        assert_eq!(parse_bundle(b"hello").certificates, 0);
    }
}
