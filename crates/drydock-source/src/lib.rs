//! Image sources: finds one image in what the user named and opens its blobs.
//!
//! This crate owns the local image formats (`docker save` archives, legacy and Docker 25+, plain
//! or compressed as a whole with gzip, bzip2, xz or zstd; OCI image layouts and OCI archives;
//! skopeo's `dir:` layout), the selection of one image among
//! several (by name, tag, digest and platform), the parsing of manifests, indexes and configs
//! (with `oci-spec`), and the verification of every small document against its digest.
//! Layer blobs are handed out as raw byte streams with the digests they must match
//! ([`Layer::verify`]); decompressing and walking them is the layer walk's job.
//!
//! It must never write anything to disk, never read outside the archive or layout it was
//! given, and never trust a size or digest it has not checked.

mod error;
mod platform;
mod resolve;
mod spec;
mod store;

pub use error::{ErrorClass, SourceError};
pub use platform::Platform;
pub use resolve::{Image, ImageFormat, Layer, Selector, resolve, sha256_digest};
pub use spec::{ImageSpec, Location};
pub use store::{
    BlobStore, DirStore, Opened, SkopeoDirStore, StreamedStore, TarStore, open, stream_archive,
};
