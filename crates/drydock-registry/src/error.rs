use drydock_source::SourceError;

use crate::auth::CredentialError;

/// Why talking to a registry or engine failed. Never holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{host}: TLS: {reason} (for a private CA, pass --ca-cert FILE)")]
    Tls { host: String, reason: String },
    #[error("{what}: {status}")]
    Status { what: String, status: String },
    /// A 4xx other than 401, 403 and 404: the registry refused what was sent.
    #[error("{what}: the registry refused it: {reason}")]
    Rejected {
        what: String,
        status: u16,
        reason: String,
    },
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{what}: access denied: {reason}")]
    Unauthorized { what: String, reason: String },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("credentials: {0}")]
    Credential(#[from] CredentialError),
}

impl From<RegistryError> for SourceError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Invalid { what, reason } => SourceError::Invalid { blob: what, reason },
            other => SourceError::Unavailable(other.to_string()),
        }
    }
}
