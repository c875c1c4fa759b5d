use drydock_facts::FileFacts;
use drydock_layers::Tree;

/// The image's final filesystem with the facts read from its files.
pub type ImageTree = Tree<FileFacts>;

/// What the image config tells the runtime (the parts checks use).
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

/// A layer as findings cite it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub index: usize,
    pub digest: Option<String>,
    pub created_by: Option<String>,
}

/// Everything a check may look at.
#[derive(Debug)]
pub struct ImageContext<'a> {
    pub tree: &'a ImageTree,
    pub config: &'a RuntimeConfig,
    /// `os/arch[/variant]` from the image config.
    pub platform: &'a str,
    pub layers: &'a [LayerInfo],
}
