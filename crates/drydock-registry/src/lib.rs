//! Images by reference: registries and local engines.
//!
//! This crate owns the docker reference grammar ([`Reference`]), the OCI distribution client
//! ([`RegistryClient`]: token and basic auth with docker/podman credentials, TLS with extra
//! CAs, retries, resumable blob downloads), the verified content-addressed blob cache
//! ([`BlobCache`]), the registry as a [`drydock_source::BlobStore`] ([`RemoteStore`]), and the
//! Docker/podman engine export ([`Engine`]), and OCI 1.1 referrers pushed and listed by the API
//! or the tag schema ([`referrers`]).
//!
//! It must never put a secret in an error, a log or a `Debug` string, never send a credential
//! to a host other than the one it belongs to, never keep an unverified blob in its cache, and
//! never talk to a network unless asked to scan a reference or attach to one, never push
//! unless asked to attach, and never remove a referrer that is not an older one of its own slot.

mod ahead;
mod auth;
mod cache;
mod client;
mod engine;
mod error;
mod reference;
pub mod referrers;
mod store;

pub use auth::{Credential, Secret, password_from};
pub use cache::BlobCache;
pub use client::{ClientOptions, RegistryClient, has_client};
pub use engine::Engine;
pub use error::RegistryError;
pub use reference::{Reference, ReferenceError};
pub use store::RemoteStore;
