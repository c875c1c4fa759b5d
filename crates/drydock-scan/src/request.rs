//! What to scan and how to reach it: plain data, whatever front end filled it in.

use std::path::PathBuf;
use std::sync::Arc;

use drydock_layers::Limits;
use drydock_registry::Credential;
use drydock_source::Platform;

use crate::{FactsStore, Snapshots};

/// One image to read, and the bounds to read it within.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// A reference (`alpine:3.20`, `registry:5000/team/app@sha256:…`) or a local image: a path,
    /// `-` for an archive on standard input, or a prefix that forces the source
    /// (`docker://`, `docker-daemon:`, `docker-archive:`, `oci-archive:`, `oci:`, `dir:`).
    pub image: String,
    /// Where a reference is looked up.
    pub source: SourceChoice,
    /// How to reach a registry, when the image comes from one.
    pub registry: RegistryOptions,
    /// In an archive or layout holding several images, the one to scan: `NAME[:TAG]`, an OCI tag
    /// or a manifest digest.
    pub select: Option<String>,
    /// The platform to take from a multi-platform index (default: this machine's); for a
    /// single-platform image, a mismatch is an error.
    pub platform: Option<Platform>,
    /// Bounds on the layers and on the expansion of the whole image.
    pub limits: Limits,
    /// Where the layer facts cache keeps its entries instead of beside the blob cache, for an
    /// image from any source: a store shared by several scanners (`drydock serve`'s database).
    pub facts_store: Option<Arc<dyn FactsStore>>,
    /// Snapshots of applied lowest layers that a long-lived process keeps between its scans
    /// (see `snapshots.rs`): a scan starts from the longest one its image begins with, and
    /// keeps one of the layers it found in the facts cache. Used only with a facts cache.
    pub snapshots: Option<Arc<Snapshots>>,
    /// Called while the scan waits for a layer another scan is walking (see
    /// `facts_cache.rs`), between looks at the facts cache: `drydock serve` tells its
    /// walk-ahead thread that the cores have idle time ([`crate::prefetch`]).
    pub while_waiting: Option<WaitWork>,
    /// The plain path: layers walked one at a time on the calling thread, each into a list of
    /// changes applied before the next is walked, with no facts cache. Slower; the reference
    /// the differential test compares the parallel and streaming path with. Front ends hide it.
    pub sequential: bool,
}

impl ScanRequest {
    /// The image with every choice left to its default.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            source: SourceChoice::Auto,
            registry: RegistryOptions::default(),
            select: None,
            platform: None,
            limits: Limits::default(),
            facts_store: None,
            snapshots: None,
            while_waiting: None,
            sequential: false,
        }
    }
}

/// What to do while waiting ([`ScanRequest::while_waiting`]).
#[derive(Clone)]
pub struct WaitWork(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for WaitWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitWork")
    }
}

/// Where the image is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceChoice {
    /// A prefix or an existing path is a local file; otherwise a reference, taken from a local
    /// Docker/podman engine that holds it, else from its registry.
    #[default]
    Auto,
    /// A file or directory (archive, layout).
    Local,
    /// The local Docker or podman engine (`DOCKER_HOST`, else the default sockets).
    Engine,
    /// The registry the reference names.
    Registry,
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// PEM files of CA certificates to trust beside the system's.
    pub ca_certs: Vec<PathBuf>,
    /// Allow plain HTTP and unverified TLS for any registry (loopback registries may always
    /// speak plain HTTP, as with docker).
    pub insecure: bool,
    /// A credential the caller was given; without one, auth files and helpers are read.
    pub credential: Option<Credential>,
    /// Where verified blobs are kept between scans.
    pub cache: BlobCacheChoice,
}

/// Where verified blobs are kept between scans.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BlobCacheChoice {
    /// `$XDG_CACHE_HOME/drydock` (none when there is no home to put it in).
    #[default]
    Default,
    /// This directory.
    Dir(PathBuf),
    /// Download every blob, keeping nothing.
    Off,
    /// Blobs as [`BlobCacheChoice::Default`] (`None`) or [`BlobCacheChoice::Dir`] do, and
    /// beside them the layer facts cache (`facts/`): a layer whose walk is cached is not read
    /// at all (see `facts_cache.rs`). In the default directory the facts of registry images
    /// only are cached; in a directory the caller named, those of local images too. The CLI's
    /// choice; `Dir` and `Default` cache no facts.
    WithFacts(Option<PathBuf>),
}
