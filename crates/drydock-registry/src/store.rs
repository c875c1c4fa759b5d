//! A registry seen as a [`BlobStore`], so that the same resolution (indexes, platforms,
//! attestations, verification) and the same parallel layer walk serve registries and archives.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use drydock_source::{BlobStore, SourceError};

use crate::ahead::{Download, Following};
use crate::cache::{BlobCache, CachingReader};
use crate::client::{ClientOptions, RegistryClient};
use crate::error::RegistryError;
use crate::reference::Reference;

/// One image in a registry: the manifest or index its reference names, and the repository's
/// blobs, read through the cache.
#[derive(Debug)]
pub struct RemoteStore {
    client: RegistryClient,
    origin: PathBuf,
    top_digest: String,
    top_bytes: Vec<u8>,
    index_json: Vec<u8>,
    /// Digests known to be manifests (fetched from `manifests/`, not `blobs/`).
    manifests: Mutex<HashSet<String>>,
    cache: Option<BlobCache>,
    ahead: Mutex<Ahead>,
}

/// Blobs on their way: fetched ahead into the cache, or streamed to a walker.
#[derive(Debug, Default)]
struct Ahead {
    /// Kept for the whole scan, so that a blob is never fetched twice.
    downloads: HashMap<String, Arc<Download>>,
    streaming: HashSet<String>,
}

fn digest_of_member(name: &str) -> Option<String> {
    name.strip_prefix("blobs/sha256/")
        .map(|hex| format!("sha256:{hex}"))
}

/// Records the manifests an index points at, so they are fetched from the right endpoint.
fn remember_children(manifests: &Mutex<HashSet<String>>, bytes: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Child>,
    }
    #[derive(serde::Deserialize)]
    struct Child {
        digest: String,
    }
    if let (Ok(index), Ok(mut known)) = (serde_json::from_slice::<Index>(bytes), manifests.lock()) {
        known.extend(index.manifests.into_iter().map(|c| c.digest));
    }
}

impl RemoteStore {
    /// Connects and fetches the manifest (or index) `reference` names.
    pub fn open(
        reference: &Reference,
        options: &ClientOptions,
        cache: Option<BlobCache>,
    ) -> Result<Self, RegistryError> {
        let client = RegistryClient::connect(reference, options)?;
        let (top_bytes, media_type, top_digest) =
            client.manifest(reference.manifest_reference())?;
        let media_type = media_type
            .filter(|m| m.contains("manifest") || m.contains("index"))
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&top_bytes)
                    .ok()
                    .and_then(|v| {
                        v.get("mediaType")
                            .and_then(|m| m.as_str())
                            .map(str::to_owned)
                    })
            })
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
        // The registry's answer, presented as a one-entry OCI layout index.
        let index_json = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": media_type,
                "digest": top_digest,
                "size": top_bytes.len(),
                "annotations": {"io.containerd.image.name": reference.to_string()},
            }],
        }))
        .map_err(|e| RegistryError::Invalid {
            what: reference.to_string(),
            reason: e.to_string(),
        })?;
        let manifests = Mutex::new(HashSet::from([top_digest.clone()]));
        remember_children(&manifests, &top_bytes);
        Ok(Self {
            client,
            origin: PathBuf::from(reference.to_string()),
            top_digest,
            top_bytes,
            index_json,
            manifests,
            cache,
            ahead: Mutex::default(),
        })
    }

    fn is_manifest(&self, digest: &str) -> bool {
        self.manifests
            .lock()
            .is_ok_and(|known| known.contains(digest))
    }
}

impl BlobStore for RemoteStore {
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        if name == "index.json" {
            return Ok(Some(self.index_json.clone()));
        }
        let Some(digest) = digest_of_member(name) else {
            return Ok(None);
        };
        if digest == self.top_digest {
            return Ok(Some(self.top_bytes.clone()));
        }
        if let Some(mut file) = self.cache.as_ref().and_then(|c| c.get(&digest)) {
            let mut bytes = Vec::new();
            if file.read_to_end(&mut bytes).is_ok()
                && crate::client::sha256_digest(&bytes) == digest
            {
                remember_children(&self.manifests, &bytes);
                return Ok(Some(bytes));
            }
        }
        let bytes = if self.is_manifest(&digest) {
            self.client.manifest(&digest)?.0
        } else {
            self.client.blob_bytes(&digest, limit)?
        };
        remember_children(&self.manifests, &bytes);
        if let Some(cache) = &self.cache {
            cache.put(&digest, &bytes);
        }
        Ok(Some(bytes))
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let digest = digest_of_member(name).ok_or_else(|| {
            SourceError::Unavailable(format!("{name}: not a blob of the registry"))
        })?;
        if let Some(file) = self.cache.as_ref().and_then(|c| c.get(&digest)) {
            return Ok(Box::new(file));
        }
        {
            let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
            match ahead.downloads.get(&digest) {
                // A fetch that failed is tried again by this stream, with its own resumes.
                Some(download) if !download.failed() => {
                    log::debug!("{digest}: read as it is fetched ahead");
                    return Ok(Box::new(Following::new(Arc::clone(download))));
                }
                _ => {
                    ahead.streaming.insert(digest.clone());
                }
            }
        }
        let stream = self.client.blob(&digest)?;
        let writer = self.cache.as_ref().and_then(|c| c.writer(&digest));
        Ok(Box::new(CachingReader::new(stream, writer, &digest)))
    }

    fn contains(&self, name: &str) -> bool {
        name == "index.json" || name.starts_with("blobs/sha256/")
    }

    fn origin(&self) -> &Path {
        &self.origin
    }

    fn fetches_ahead(&self) -> bool {
        self.cache.is_some()
    }

    fn fetch_ahead(&self, name: &str, stop: &AtomicBool) {
        let (Some(cache), Some(digest)) = (&self.cache, digest_of_member(name)) else {
            return;
        };
        if cache.get(&digest).is_some() {
            return;
        }
        let download = {
            let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
            if ahead.downloads.contains_key(&digest) || ahead.streaming.contains(&digest) {
                return;
            }
            let Some(writer) = cache.writer(&digest) else {
                return;
            };
            let Ok(download) = Download::new(&writer) else {
                return;
            };
            let download = Arc::new(download);
            ahead
                .downloads
                .insert(digest.clone(), Arc::clone(&download));
            (download, writer)
        };
        log::debug!("{digest}: fetched ahead of its walk");
        let (download, writer) = download;
        download.run(&self.client, &digest, writer, stop);
    }
}
