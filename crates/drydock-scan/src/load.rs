//! Reading an image to the end: the source chosen from the argument, the image resolved, every
//! layer walked (in parallel, or as an archive streams by) and applied in order.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use drydock_checks::{ImageTree, LayerSecret};
use drydock_facts::secrets::redact;
use drydock_facts::{FactsHook, FileFacts};
use drydock_layers::{
    ApplyError, Change, ChangeBuffer, Compression, Efficiency, EfficiencySummary, ExpansionBudget,
    LayerWalk, Limits, WalkError, walk_layer_into, walk_layer_within,
};
use drydock_registry::{BlobCache, ClientOptions, Engine, Reference, RemoteStore};
use drydock_source::{
    BlobStore, Image, ImageFormat, ImageSpec, Layer, Location, Opened, Selector, SourceError,
};
use rayon::prelude::*;

use crate::error::ScanError;
use crate::facts_cache::{Claim, FactsCache, Miss, Turn, Waited};
use crate::progress::{FactsCacheEvent, ScanProgress};
use crate::request::{BlobCacheChoice, RegistryOptions, ScanRequest, SourceChoice};
use crate::snapshots::SnapshotLayer;

/// A layer after its walk, with what was measured.
#[derive(Debug)]
pub struct WalkedLayer {
    pub layer: Layer,
    pub blob_size: u64,
    pub tar_size: u64,
}

/// An image read to the end: its description, its filesystem, its layers.
#[derive(Debug)]
pub struct Scanned {
    pub source: String,
    pub image: Image,
    pub tree: ImageTree,
    pub layers: Vec<WalkedLayer>,
    pub efficiency: EfficiencySummary,
    /// Credentials found in any layer, deleted later or not.
    pub secrets: Vec<LayerSecret>,
}

/// Why a layer could not be walked: its blob did not open, or its content is bad.
#[derive(Debug)]
enum LayerError {
    Open(SourceError),
    Walk(WalkError),
}

/// A layer's blob walked to its end: its digests, and its changes in one of three forms.
#[derive(Debug)]
struct WalkedBlob {
    walk: LayerWalk<FileFacts>,
    changes: Held,
    /// Credentials among its files, in tar order.
    secrets: Vec<LayerSecret>,
}

impl WalkedBlob {
    /// A layer the facts cache has: its entry is read when its turn to be applied comes.
    fn cached(walk: LayerWalk<FileFacts>) -> Self {
        Self {
            walk,
            changes: Held::Cached,
            secrets: Vec::new(),
        }
    }
}

/// A walked layer's changes until its turn to be applied.
#[derive(Debug)]
enum Held {
    /// Compact, in a [`ChangeBuffer`] (a layer walked while the ones below it were not
    /// applied yet).
    Buffer(ChangeBuffer<FileFacts>),
    /// Already observed and applied as they streamed (the first layer): how that went.
    Applied(Result<(), ApplyError>),
    /// In the walk's list of changes (the plain, sequential path).
    List,
    /// Not walked: the facts cache has an entry for this diff id and blob, whose header gave
    /// the walk's measurements. The entry is read and checked whole when its turn comes (one
    /// layer's changes in memory at a time), and the layer is walked then if it does not
    /// check out.
    Cached,
    /// Applied already: in the snapshot of the lowest layers the scan started from.
    Snapshot,
}

type Walked = Result<WalkedBlob, LayerError>;

/// What the layers are applied to, in order.
#[derive(Debug, Default)]
struct Applied {
    tree: ImageTree,
    efficiency: Efficiency,
}

fn secret_of(layer: usize, change: &Change<FileFacts>) -> Option<LayerSecret> {
    let Change::Add {
        path,
        fact: Some(fact),
        ..
    } = change
    else {
        return None;
    };
    let secret = fact.secret()?;
    Some(LayerSecret {
        layer,
        path: drydock_layers::path::display(path),
        kind: secret.kind.clone(),
        detail: secret.detail.clone(),
    })
}

/// Walks one layer blob into a compact change buffer.
fn walk_buffered(
    layer: usize,
    blob: impl Read,
    limits: &Limits,
    budget: &Arc<ExpansionBudget>,
) -> Result<WalkedBlob, WalkError> {
    let mut buffer = ChangeBuffer::new();
    let mut secrets = Vec::new();
    let walk = walk_layer_into(blob, &FactsHook, limits, budget, &mut |change| {
        secrets.extend(secret_of(layer, &change));
        buffer.push(change);
    })?;
    Ok(WalkedBlob {
        walk,
        changes: Held::Buffer(buffer),
        secrets,
    })
}

/// Walks one layer blob into a list of changes, the plain way.
fn walk_listed(
    layer: usize,
    blob: impl Read,
    limits: &Limits,
    budget: &Arc<ExpansionBudget>,
) -> Result<WalkedBlob, WalkError> {
    let walk = walk_layer_within(blob, &FactsHook, limits, budget)?;
    let secrets = walk
        .changes
        .iter()
        .filter_map(|change| secret_of(layer, change))
        .collect();
    Ok(WalkedBlob {
        walk,
        changes: Held::List,
        secrets,
    })
}

/// Walks the first layer and applies each change as the walk yields it: no change list at
/// all. An apply error stops applying but not the walk, so that a bad blob is still reported
/// first, as it is for the other layers.
fn walk_applied(
    layer: usize,
    blob: impl Read,
    limits: &Limits,
    budget: &Arc<ExpansionBudget>,
    applied: &Mutex<Applied>,
) -> Result<WalkedBlob, WalkError> {
    let mut guard = applied.lock().unwrap_or_else(|e| e.into_inner());
    let Applied { tree, efficiency } = &mut *guard;
    let index = u32::try_from(layer).unwrap_or(u32::MAX);
    let (Some(mut tree), Some(mut observation)) =
        (tree.first_layer(index), efficiency.first_layer())
    else {
        return walk_buffered(layer, blob, limits, budget);
    };
    let mut secrets = Vec::new();
    let mut outcome = Ok(());
    let walk = walk_layer_into(blob, &FactsHook, limits, budget, &mut |change| {
        secrets.extend(secret_of(layer, &change));
        observation.touch(&change);
        if outcome.is_ok() {
            outcome = tree.apply(change);
        }
    })?;
    observation.finish();
    Ok(WalkedBlob {
        walk,
        changes: Held::Applied(outcome),
        secrets,
    })
}

/// Where the image comes from, decided from the argument.
pub(crate) enum Origin {
    Local(ImageSpec),
    Engine(Engine, String),
    Registry(Reference),
}

/// Decides the source: prefixes first, then an existing path, then a reference looked up in a
/// local engine that holds it and else in its registry.
pub(crate) fn origin(request: &ScanRequest) -> Result<Origin, ScanError> {
    let image = request.image.as_str();
    let engine_name = image.strip_prefix("docker-daemon:");
    let local_prefix = ["docker-archive:", "oci-archive:", "oci:", "dir:"]
        .iter()
        .any(|p| image.starts_with(p))
        || image == "-";
    // No reference starts with `/` or `.`; and `app.tar` is far more often a file than a
    // Docker Hub repository of that name.
    let looks_like_path = image.starts_with(['/', '.', '~'])
        || [".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar.zst"]
            .iter()
            .any(|suffix| image.ends_with(suffix));
    let choice = match request.source {
        SourceChoice::Auto if engine_name.is_some() => SourceChoice::Engine,
        SourceChoice::Auto
            if local_prefix || looks_like_path || std::path::Path::new(image).exists() =>
        {
            SourceChoice::Local
        }
        SourceChoice::Auto if image.starts_with("docker://") => SourceChoice::Registry,
        other => other,
    };
    if choice == SourceChoice::Local {
        return Ok(Origin::Local(ImageSpec::parse(image)?));
    }
    let name = engine_name.unwrap_or(image);
    let reference = Reference::parse(name).map_err(|source| {
        if choice == SourceChoice::Auto {
            ScanError::NeitherFileNorReference {
                image: image.to_owned(),
                source,
            }
        } else {
            ScanError::Reference(source)
        }
    })?;
    if matches!(choice, SourceChoice::Engine | SourceChoice::Auto) {
        let engine = Engine::discover();
        if choice == SourceChoice::Engine {
            let engine = engine.ok_or_else(|| {
                SourceError::Unavailable(
                    "no Docker or podman engine found (set DOCKER_HOST)".into(),
                )
            })?;
            return Ok(Origin::Engine(engine, name.to_owned()));
        }
        // Auto: an engine that is reachable and holds the image wins, as with dive and trivy.
        if let Some(engine) = engine
            && engine.has_image(name).unwrap_or(false)
        {
            return Ok(Origin::Engine(engine, name.to_owned()));
        }
    }
    Ok(Origin::Registry(reference))
}

pub(crate) fn client_options(registry: &RegistryOptions) -> ClientOptions {
    ClientOptions {
        ca_certs: registry.ca_certs.clone(),
        insecure: registry.insecure,
        credential: registry.credential.clone(),
        attempts: None,
        push: false,
    }
}

fn blob_cache(registry: &RegistryOptions) -> Option<BlobCache> {
    match &registry.cache {
        BlobCacheChoice::Off => None,
        BlobCacheChoice::Dir(dir) | BlobCacheChoice::WithFacts(Some(dir)) => {
            Some(BlobCache::new(dir.clone()))
        }
        BlobCacheChoice::Default | BlobCacheChoice::WithFacts(None) => {
            BlobCache::default_dir().map(BlobCache::new)
        }
    }
}

/// The layer facts cache, when the request asks for one: beside the blob cache, for registry
/// images, and for local ones too when the caller named the directory. A local image's blobs
/// are files nobody else verified, so the default directory (shared by every scan of the
/// user, tests included) is not trusted to stand in for them unasked. A store the caller
/// gives ([`ScanRequest::facts_store`]) is used for every image. Never on the plain path,
/// which stays the reference the differential test compares against.
fn facts_cache(request: &ScanRequest, from_registry: bool) -> Option<FactsCache> {
    if request.sequential {
        return None;
    }
    if let Some(store) = &request.facts_store {
        return Some(FactsCache::in_store(store.clone()));
    }
    match &request.registry.cache {
        BlobCacheChoice::WithFacts(Some(dir)) => Some(FactsCache::new(dir)),
        BlobCacheChoice::WithFacts(None) if from_registry => {
            BlobCache::default_dir().map(|dir| FactsCache::new(&dir))
        }
        _ => None,
    }
}

/// The registry's store of the image `reference` names, the way `request` reaches it, and
/// the spec that resolves it there.
fn open_registry(
    request: &ScanRequest,
    reference: &Reference,
) -> Result<(RemoteStore, ImageSpec), ScanError> {
    let options = client_options(&request.registry);
    let store = RemoteStore::open(reference, &options, blob_cache(&request.registry))
        .map_err(SourceError::from)?;
    let spec = ImageSpec {
        location: Location::OciLayout(reference.to_string().into()),
        reference: None,
    };
    Ok((store, spec))
}

/// Opens, resolves, walks and applies every layer of the image `request` names, within its
/// limits.
pub fn load(request: &ScanRequest, progress: &dyn ScanProgress) -> Result<Scanned, ScanError> {
    let started = std::time::Instant::now();
    let limits = &request.limits;
    let origin = origin(request)?;
    let facts = facts_cache(request, matches!(origin, Origin::Registry(_)));
    let (spec, opened, label) = match origin {
        Origin::Local(spec) => {
            let opened = drydock_source::open(&spec, &limits.budget())?;
            (spec, opened, None)
        }
        Origin::Engine(engine, name) => {
            let reader = engine.export(&name).map_err(SourceError::from)?;
            let label = format!("docker-daemon:{name}");
            let spec = ImageSpec {
                location: Location::Stdin,
                reference: None,
            };
            (
                spec,
                Opened::Streaming {
                    origin: label.clone().into(),
                    reader,
                },
                Some(label),
            )
        }
        Origin::Registry(reference) => {
            let (store, spec) = open_registry(request, &reference)?;
            (
                spec,
                Opened::Random(Box::new(store)),
                Some(format!("docker://{reference}")),
            )
        }
    };
    let selector = Selector {
        reference: request.select.clone().or_else(|| spec.reference.clone()),
        platform: request.platform.clone(),
    };
    // One budget for every layer of the image, walked in parallel or streamed.
    let budget = limits.budget();
    let sequential = request.sequential;
    let applied = Mutex::new(Applied::default());
    // Kept snapshots stand in for layers only where the facts cache may.
    let snapshots = request.snapshots.as_deref().filter(|_| facts.is_some());
    let mut base_len = 0;
    let (image, walks) = match opened {
        Opened::Random(store) => {
            let image = drydock_source::resolve(&*store, &spec.location, &selector)?;
            log::debug!("image resolved in {:.2?}", started.elapsed());
            log_image(&image);
            let sizes: Option<u64> = image.layers.iter().map(|l| l.size).sum();
            progress.layers(image.layers.len(), sizes);
            let base = snapshots.and_then(|s| s.longest(&image.layers));
            if let Some(base) = &base {
                // A copy of the lowest layers as an earlier scan applied them.
                let copied = std::time::Instant::now();
                *applied.lock().unwrap_or_else(|e| e.into_inner()) = Applied {
                    tree: base.tree.clone(),
                    efficiency: base.efficiency.clone(),
                };
                base_len = base.len();
                log::debug!(
                    "started from a snapshot of the lowest {base_len} layer(s), copied in {:.2?}",
                    copied.elapsed()
                );
            }
            let walks = if sequential {
                // Walked one by one as the loop below applies them.
                image.layers.iter().map(|_| None).collect()
            } else {
                let walking = Walking {
                    limits,
                    budget: &budget,
                    progress,
                    facts: facts.as_ref(),
                    while_waiting: request.while_waiting.as_ref().map(|work| &*work.0),
                };
                let mut walks = walk_in_parallel(&*store, &image, base_len, walking, &applied);
                for (walked, layer) in walks.iter_mut().zip(base.iter().flat_map(|b| &b.layers)) {
                    progress.facts_cache(FactsCacheEvent::Snapshot);
                    *walked = Some(Ok(WalkedBlob {
                        walk: layer.walk.clone(),
                        changes: Held::Snapshot,
                        secrets: layer.secrets.clone(),
                    }));
                }
                walks
            };
            (image, Walks::Random(store, walks))
        }
        Opened::Streaming { origin, reader } => {
            let mut streamed: HashMap<String, Walked> = HashMap::new();
            let reader = progress.reader(reader);
            let store = drydock_source::stream_archive(origin, reader, &mut |name, blob| {
                log::debug!("walking {name} as it streams by");
                // Which layer this blob is, the archive says at its end: the changes are held.
                let walked = if sequential {
                    walk_listed(0, blob, limits, &budget)
                } else {
                    walk_buffered(0, blob, limits, &budget)
                };
                streamed.insert(name.to_owned(), walked.map_err(LayerError::Walk));
                progress.layer_done();
            })?;
            let image = drydock_source::resolve(&store, &spec.location, &selector)?;
            log_image(&image);
            progress.layers(image.layers.len(), None);
            let walks = image
                .layers
                .iter()
                .map(|layer| {
                    let blob = layer.blob.as_deref()?;
                    let name = store
                        .canonical_name(blob)
                        .unwrap_or_else(|| blob.to_owned());
                    Some(match streamed.remove(&name) {
                        Some(walked) => walked.map(|mut w| {
                            for secret in &mut w.secrets {
                                secret.layer = layer.index;
                            }
                            w
                        }),
                        None => walk_blob(&store, layer.index, blob, limits, &budget, sequential),
                    })
                })
                .collect();
            (image, Walks::Done(walks))
        }
    };
    log::debug!("layers read in {:.2?} since the start", started.elapsed());
    let source = label.unwrap_or_else(|| source_label(&spec, &image));
    let Applied {
        mut tree,
        mut efficiency,
    } = applied.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut secrets = Vec::new();
    let mut layers = Vec::new();
    let mut notes = Vec::new();
    // The lowest layers that came from the facts cache or a snapshot, while they do: a
    // snapshot of them is kept once a layer that was walked comes, or the top layer (the
    // image's own, seldom another's: a snapshot of the whole image would serve no other).
    let mut chain: Option<Vec<SnapshotLayer>> = snapshots.map(|_| Vec::new());
    let (store, walks) = match walks {
        Walks::Random(store, walks) => (Some(store), walks),
        Walks::Done(walks) => (None, walks),
    };
    for (layer, walked) in image.layers.iter().zip(walks) {
        // The plain path walks each layer here, after the ones below it were applied.
        let walked = match (walked, &store) {
            (None, Some(store)) if sequential => layer.blob.as_deref().map(|blob| {
                let walked = walk_blob(&**store, layer.index, blob, limits, &budget, true);
                progress.layer_done();
                walked
            }),
            (walked, _) => walked,
        };
        let Some(walked) = walked else {
            // A foreign layer that is not shipped: noted by the source, nothing to apply.
            layers.push(WalkedLayer {
                layer: layer.clone(),
                blob_size: layer.size.unwrap_or(0),
                tar_size: 0,
            });
            continue;
        };
        let walked = walked.map_err(|error| match error {
            LayerError::Open(source) => ScanError::Source(source),
            LayerError::Walk(source) => ScanError::Walk {
                layer: layer.label(),
                source,
            },
        })?;
        let WalkedBlob {
            mut walk,
            mut changes,
            secrets: mut found,
        } = walked;
        let top = layer.index + 1 == image.layers.len();
        if (top || !matches!(changes, Held::Cached | Held::Snapshot))
            && let (Some(applied), Some(snapshots)) = (chain.take(), snapshots)
            && applied.len() > base_len
        {
            snapshots.keep(&image.layers, &applied, &tree, &efficiency);
        }
        if let (Held::Cached, Some(cache)) = (&changes, &facts) {
            let reading = std::time::Instant::now();
            let entry = match cache.read(&layer.diff_id) {
                Ok(entry)
                    if entry.walk.blob_digest == walk.blob_digest
                        && entry.walk.blob_size == walk.blob_size =>
                {
                    Ok(entry)
                }
                // Rewritten for another blob since it was looked up: not this layer's.
                Ok(_) => Err(Miss::Absent),
                Err(miss) => Err(miss),
            };
            progress.facts_cache(match &entry {
                Ok(_) => FactsCacheEvent::Hit,
                Err(Miss::Absent) => FactsCacheEvent::Miss,
                Err(Miss::Ignored) => FactsCacheEvent::Ignored,
            });
            match (entry.ok(), &store, layer.blob.as_deref()) {
                (Some(entry), _, _) => {
                    let read = reading.elapsed();
                    walk = entry.walk;
                    changes = replay_cached(&mut tree, &mut efficiency, layer.index, entry.changes);
                    log::debug!(
                        "{}: facts cache entry read in {read:.2?}, replayed in {:.2?}",
                        layer.label(),
                        reading.elapsed() - read
                    );
                    found = entry.secrets;
                    for secret in &mut found {
                        secret.layer = layer.index;
                    }
                }
                (None, Some(store), Some(blob)) => {
                    let walked = walk_blob(&**store, layer.index, blob, limits, &budget, false)
                        .map_err(|error| match error {
                            LayerError::Open(source) => ScanError::Source(source),
                            LayerError::Walk(source) => ScanError::Walk {
                                layer: layer.label(),
                                source,
                            },
                        })?;
                    // Stored again, as `walk_in_parallel` stores its walks.
                    keep(cache, layer, &walked, progress);
                    (walk, changes, found) = (walked.walk, walked.changes, walked.secrets);
                }
                (None, _, _) => {
                    return Err(ScanError::Source(SourceError::Unavailable(format!(
                        "{}: neither in the facts cache nor readable",
                        layer.label()
                    ))));
                }
            }
        }
        layer.verify(
            &walk.blob_digest.to_string(),
            walk.blob_size,
            &walk.diff_id.to_string(),
        )?;
        if let Some(note) = media_type_note(layer, walk.compression) {
            notes.push(note);
        }
        layers.push(WalkedLayer {
            layer: layer.clone(),
            blob_size: walk.blob_size,
            tar_size: walk.tar_size,
        });
        if let Some(chain) = &mut chain {
            chain.push(SnapshotLayer {
                walk: LayerWalk {
                    changes: Vec::new(),
                    ..walk.clone()
                },
                secrets: found.clone(),
            });
        }
        secrets.extend(found);
        let index = u32::try_from(layer.index).unwrap_or(u32::MAX);
        let outcome = match changes {
            Held::Applied(outcome) => outcome,
            Held::Buffer(buffer) => {
                efficiency.observe_buffer(&tree, &buffer);
                tree.apply_buffer(index, buffer)
            }
            Held::List => {
                efficiency.observe(&tree, &walk.changes);
                tree.apply(index, walk.changes)
            }
            Held::Snapshot => Ok(()),
            // Replaced above by the entry or a walk.
            Held::Cached => {
                return Err(ScanError::Source(SourceError::Unavailable(format!(
                    "{}: a cached layer was not read",
                    layer.label()
                ))));
            }
        };
        outcome.map_err(|source| ScanError::Apply {
            layer: layer.label(),
            source,
        })?;
    }
    let efficiency = efficiency.summary();
    log::debug!("image loaded in {:.2?}", started.elapsed());
    let mut image = image;
    image.notes.extend(notes);
    Ok(Scanned {
        source,
        image,
        tree,
        layers,
        efficiency,
        secrets,
    })
}

/// Walks ahead the layers of the image `request` names that its facts cache lacks and that
/// no scan is walking now, and stores their facts, without building a tree or running a
/// check: a later scan of the image (or of another with those layers) finds them in the
/// facts cache. One layer at a time, biggest first, on the calling thread; stops between
/// layers when `stop` says so. A layer a scan is walking is passed over, but the walk ahead
/// holds no claim: a scan that wants the layer meanwhile walks it rather than wait (the
/// caller may walk ahead at a low priority). Answers how many layers it stored. Does nothing without a
/// facts cache, or for an image that is not read at random (an engine's export, an archive
/// on standard input or compressed whole).
pub fn prefetch(
    request: &ScanRequest,
    progress: &dyn ScanProgress,
    stop: &dyn Fn() -> bool,
) -> Result<usize, ScanError> {
    if request.sequential {
        return Ok(0);
    }
    let limits = &request.limits;
    let origin = origin(request)?;
    let Some(facts) = facts_cache(request, matches!(origin, Origin::Registry(_))) else {
        return Ok(0);
    };
    let (store, spec): (Box<dyn BlobStore>, ImageSpec) = match origin {
        Origin::Local(spec) => match drydock_source::open(&spec, &limits.budget())? {
            Opened::Random(store) => (store, spec),
            Opened::Streaming { .. } => return Ok(0),
        },
        Origin::Engine(..) => return Ok(0),
        Origin::Registry(reference) => {
            let (store, spec) = open_registry(request, &reference)?;
            (Box::new(store), spec)
        }
    };
    let selector = Selector {
        reference: request.select.clone().or_else(|| spec.reference.clone()),
        platform: request.platform.clone(),
    };
    let image = drydock_source::resolve(&*store, &spec.location, &selector)?;
    let budget = limits.budget();
    let mut order: Vec<&Layer> = image.layers.iter().collect();
    order.sort_by_key(|layer| std::cmp::Reverse(layer.size.unwrap_or(0)));
    let mut stored = 0;
    for layer in order {
        if stop() {
            break;
        }
        let (Some(blob), Some(digest)) = (layer.blob.as_deref(), layer.digest.as_deref()) else {
            continue;
        };
        if facts.probe(&layer.diff_id, digest, layer.size).is_some() {
            continue;
        }
        let Turn::Walk(claim) = facts.claim(&layer.diff_id) else {
            continue;
        };
        drop(claim);
        let started = std::time::Instant::now();
        progress.facts_cache(FactsCacheEvent::Miss);
        let reader = store.open(blob).map(|r| progress.reader(r))?;
        let walked = walk_buffered(layer.index, reader, limits, &budget).map_err(|source| {
            ScanError::Walk {
                layer: layer.label(),
                source,
            }
        })?;
        if keep(&facts, layer, &walked, progress) {
            stored += 1;
        }
        log::debug!(
            "{}: walked ahead of its scan in {:.2?}",
            layer.label(),
            started.elapsed()
        );
    }
    Ok(stored)
}

/// A cached layer's changes, applied at once when it is the lowest layer, the way a walk
/// applies the lowest layer as it streams (`walk_applied`): one pass over the buffer, each
/// change observed and applied as it is decoded, instead of holding it for the apply loop
/// (which reads it three times: for the efficiency, the whiteouts and the entries). Any other
/// layer is held as the buffer it is.
fn replay_cached(
    tree: &mut ImageTree,
    efficiency: &mut Efficiency,
    layer: usize,
    buffer: ChangeBuffer<FileFacts>,
) -> Held {
    let index = u32::try_from(layer).unwrap_or(u32::MAX);
    let (Some(mut tree), Some(mut observation)) =
        (tree.first_layer(index), efficiency.first_layer())
    else {
        return Held::Buffer(buffer);
    };
    let mut outcome = Ok(());
    for change in buffer.into_changes() {
        observation.touch(&change);
        if outcome.is_ok() {
            outcome = tree.apply(change);
        }
    }
    observation.finish();
    Held::Applied(outcome)
}

/// The walks of an image's layers: done (`None` for a layer not shipped), or, on the plain
/// path, left to the apply loop, which needs the store.
enum Walks<'s> {
    Random(Box<dyn BlobStore + 's>, Vec<Option<Walked>>),
    Done(Vec<Option<Walked>>),
}

/// Layer downloads at once from a registry: walkers' streams and fetches ahead together
/// (docker and containerd pull three at once).
const MAX_DOWNLOADS: usize = 4;

/// Walks every layer of a random-access store, one per core, the biggest first: inflating is
/// most of the work and one gzip stream cannot be split, so the longest must start first.
/// The lowest layer with a blob is applied to `applied` as it streams; the others are held
/// compactly until their turn.
///
/// With a facts cache, each layer is looked up first and only the misses are walked, every one
/// into a buffer (the first too), and stored as soon as its digests check out. A miss that
/// another scan is walking at this moment (of this process, or of another sharing the store)
/// is not walked twice: once this scan's own walks are done, it waits for the other's entry.
fn walk_in_parallel(
    store: &dyn BlobStore,
    image: &Image,
    skip: usize,
    walking: Walking<'_>,
    applied: &Mutex<Applied>,
) -> Vec<Option<Walked>> {
    let Walking {
        limits,
        budget,
        progress,
        facts,
        while_waiting,
    } = walking;
    // The lowest `skip` layers are in the snapshot the scan started from.
    let mut order: Vec<usize> = (skip..image.layers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(image.layers[i].size.unwrap_or(0)));
    let first = image
        .layers
        .iter()
        .position(|l| l.blob.is_some())
        .filter(|_| facts.is_none());
    // The facts cache first: a layer found there is neither fetched nor walked, nor is one
    // that another scan is walking now.
    let work: Vec<(usize, Work)> = order
        .iter()
        .map(|&i| {
            let layer = &image.layers[i];
            let Some((cache, digest)) = layer.blob.as_ref().and(facts).zip(layer.digest.as_deref())
            else {
                return (i, Work::Walk(None));
            };
            if let Some(walk) = cache.probe(&layer.diff_id, digest, layer.size) {
                return (i, Work::Cached(walk));
            }
            match cache.claim(&layer.diff_id) {
                Turn::Walk(claim) => (i, Work::Walk(Some(claim))),
                Turn::Wait => (i, Work::Wait),
            }
        })
        .collect();
    // The walkers take the biggest layers first; the rest are fetched ahead meanwhile, up to
    // `MAX_DOWNLOADS` connections in all, so that every layer is on the wire from the start.
    let walkers = rayon::current_num_threads();
    let ahead: Mutex<VecDeque<&str>> = Mutex::new(
        work.iter()
            .filter(|(_, work)| matches!(work, Work::Walk(_)))
            .filter_map(|&(i, _)| image.layers[i].blob.as_deref())
            .skip(walkers)
            .collect(),
    );
    let fetchers = if store.fetches_ahead() {
        let queued = ahead.lock().map_or(0, |queue| queue.len());
        MAX_DOWNLOADS.saturating_sub(walkers).min(queued)
    } else {
        0
    };
    let stop = AtomicBool::new(false);
    let walk = |i: usize, claim: Option<Claim>| {
        let layer = &image.layers[i];
        let started = std::time::Instant::now();
        let walked = layer.blob.as_deref().map(|blob| {
            if facts.is_some() {
                progress.facts_cache(FactsCacheEvent::Miss);
            }
            let reader = store
                .open(blob)
                .map(|r| progress.reader(r))
                .map_err(LayerError::Open)?;
            let walked = if first == Some(i) {
                walk_applied(layer.index, reader, limits, budget, applied)
            } else {
                walk_buffered(layer.index, reader, limits, budget)
            }
            .map_err(LayerError::Walk)?;
            if let Some(cache) = facts {
                keep(cache, layer, &walked, progress);
            }
            Ok(walked)
        });
        // Given up only now, the entry written: another scan waiting for it finds it.
        drop(claim);
        progress.layer_done();
        log::debug!("{}: walked in {:.2?}", layer.label(), started.elapsed());
        walked
    };
    let mut waiting = Vec::new();
    let mut results: Vec<(usize, Option<Walked>)> = std::thread::scope(|scope| {
        for _ in 0..fetchers {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let next = ahead.lock().ok().and_then(|mut queue| queue.pop_front());
                    let Some(name) = next else { break };
                    store.fetch_ahead(name, &stop);
                }
            });
        }
        let mut mine = Vec::new();
        let mut results = Vec::new();
        for (i, work) in work {
            match work {
                Work::Cached(walk) => {
                    progress.layer_done();
                    log::debug!("{}: found in the facts cache", image.layers[i].label());
                    results.push((i, Some(Ok(WalkedBlob::cached(walk)))));
                }
                Work::Walk(claim) => mine.push((i, claim)),
                Work::Wait => waiting.push(i),
            }
        }
        results.par_extend(
            mine.into_par_iter()
                .with_max_len(1)
                .map(|(i, claim)| (i, walk(i, claim))),
        );
        // Every layer was opened by now, unless a walk failed: the rest is not wanted.
        stop.store(true, Ordering::Relaxed);
        results
    });
    // The layers another scan was walking: its entry, or the walk when it gave up without one.
    for i in waiting {
        let layer = &image.layers[i];
        let (Some(cache), Some(digest)) = (facts, layer.digest.as_deref()) else {
            continue;
        };
        let started = std::time::Instant::now();
        let walked = match cache.wait_for(&layer.diff_id, digest, layer.size, while_waiting) {
            Waited::Cached(walk) => {
                progress.layer_done();
                log::debug!(
                    "{}: found in the facts cache after another scan's walk, {:.2?} later",
                    layer.label(),
                    started.elapsed()
                );
                Some(Ok(WalkedBlob::cached(walk)))
            }
            Waited::Walk(claim) => walk(i, Some(claim)),
        };
        results.push((i, walked));
    }
    results.extend((0..skip).map(|i| (i, None)));
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, walked)| walked).collect()
}

/// What every layer walk of a scan shares.
#[derive(Clone, Copy)]
struct Walking<'a> {
    limits: &'a Limits,
    budget: &'a Arc<ExpansionBudget>,
    progress: &'a dyn ScanProgress,
    facts: Option<&'a FactsCache>,
    while_waiting: Option<&'a (dyn Fn() + Send + Sync)>,
}

/// What [`walk_in_parallel`] does about one layer.
enum Work {
    /// Nothing: the facts cache has its entry, whose header gave the walk's measurements.
    Cached(LayerWalk<FileFacts>),
    /// Walk it, as the facts cache's one walker of it when it has a claim.
    Walk(Option<Claim>),
    /// Wait for another scan's walk of it.
    Wait,
}

/// Stores a walked layer in the facts cache once its digests check out against the image
/// (and only then: the apply loop reports a mismatch); `true` when it is stored.
fn keep(
    cache: &FactsCache,
    layer: &Layer,
    walked: &WalkedBlob,
    progress: &dyn ScanProgress,
) -> bool {
    let Held::Buffer(buffer) = &walked.changes else {
        return false;
    };
    let walk = &walked.walk;
    if layer.digest.is_none()
        || layer
            .verify(
                &walk.blob_digest.to_string(),
                walk.blob_size,
                &walk.diff_id.to_string(),
            )
            .is_err()
    {
        return false;
    }
    let stored = cache.write(walk, buffer, &walked.secrets);
    if stored {
        progress.facts_cache(FactsCacheEvent::Stored);
    }
    stored
}

/// A layer whose media type names another compression than its bytes have: read by its bytes,
/// as containerd and docker do, but the manifest lies and another tool may not cope.
fn media_type_note(layer: &Layer, actual: Compression) -> Option<String> {
    let media_type = layer.media_type.as_deref()?;
    let declared = if media_type.ends_with("gzip") {
        Compression::Gzip
    } else if media_type.ends_with("zstd") {
        Compression::Zstd
    } else if media_type.ends_with(".tar") || media_type.ends_with("/tar") {
        Compression::None
    } else {
        return None;
    };
    (declared != actual).then(|| {
        format!(
            "{}: the manifest declares `{media_type}`, but the blob is {}; it was read by its \
             bytes, as containerd and docker do, but other tools may refuse it",
            layer.label(),
            actual.describe()
        )
    })
}

fn log_image(image: &Image) {
    log::info!(
        "image {} ({}), {} layer(s)",
        image.config_digest,
        image.platform,
        image.layers.len()
    );
    for layer in &image.layers {
        log::debug!(
            "{}: {} bytes{}",
            layer.label(),
            layer.size.map_or("?".into(), |s| s.to_string()),
            layer
                .created_by
                .as_deref()
                .map(|c| format!(", {}", redact(c)))
                .unwrap_or_default()
        );
    }
}

fn walk_blob(
    store: &dyn BlobStore,
    layer: usize,
    blob: &str,
    limits: &Limits,
    budget: &Arc<ExpansionBudget>,
    listed: bool,
) -> Walked {
    let reader: Box<dyn Read + Send + '_> = store.open(blob).map_err(LayerError::Open)?;
    if listed {
        walk_listed(layer, reader, limits, budget)
    } else {
        walk_buffered(layer, reader, limits, budget)
    }
    .map_err(LayerError::Walk)
}

fn source_label(spec: &ImageSpec, image: &Image) -> String {
    let path = spec
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "-".into());
    let transport = match (&spec.location, image.format) {
        (Location::OciLayout(_), _) => "oci",
        (Location::SkopeoDir(_), _) | (_, ImageFormat::SkopeoDir) => "dir",
        (Location::OciArchive(_), _) => "oci-archive",
        (Location::DockerArchive(_), _) => "docker-archive",
        (_, ImageFormat::DockerArchive) => "docker-archive",
        (Location::Path(p), ImageFormat::Oci) if p.is_dir() => "oci",
        (_, ImageFormat::Oci) => "oci-archive",
    };
    format!("{transport}:{path}")
}
