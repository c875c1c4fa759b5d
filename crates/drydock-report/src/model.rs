use std::ops::Deref;

use drydock_checks::Finding;

use crate::score::Grade;

/// The version of the JSON contract. Bumped only when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// One scan's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub image: ImageInfo,
    /// 0 to 100; see `docs/scoring.md`.
    pub score: u32,
    pub grade: Grade,
    /// Whether the gate passed (the process exit code says the same).
    pub passed: bool,
    /// False when a critical finding says the container will not start or its program fails.
    pub runnable: bool,
    pub findings: Vec<ReportFinding>,
    /// Things that limited the scan without stopping it (a foreign layer not shipped).
    pub notes: Vec<String>,
}

/// A finding as the report shows it: what the check found, what it cost, where it is explained.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// Points this finding took from the score (see `docs/scoring.md`).
    pub cost: u32,
    /// The check's page.
    pub docs: String,
}

impl ReportFinding {
    /// Wraps findings with their costs and documentation links.
    pub fn from_findings(findings: Vec<Finding>) -> Vec<Self> {
        let costs = crate::score::costs(&findings);
        findings
            .into_iter()
            .zip(costs)
            .map(|(finding, cost)| {
                let docs = format!("docs/checks/{}.md", finding.id);
                Self {
                    finding,
                    cost,
                    docs,
                }
            })
            .collect()
    }
}

impl Deref for ReportFinding {
    type Target = Finding;
    fn deref(&self) -> &Finding {
        &self.finding
    }
}

/// Which image was scanned.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageInfo {
    /// What the user named, with its transport: `docker-archive:app.tar`.
    pub source: String,
    /// The image's name or tag, when the source records one.
    pub reference: Option<String>,
    /// The manifest digest, when the format has a manifest (OCI, Docker 25+ archives).
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    pub platform: String,
    pub layers: Vec<LayerReport>,
    /// dive's image efficiency, 0 to 1.
    pub efficiency: f64,
    /// dive's wasted bytes: every size of every path more than one layer touches.
    pub wasted_bytes: u64,
    /// Wasted bytes over the bytes of the layers above the base, in percent.
    pub user_wasted_percent: f64,
}

/// One layer of the scanned image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerReport {
    pub index: usize,
    /// The blob digest, when the format records it.
    pub digest: Option<String>,
    pub diff_id: String,
    /// Bytes of the blob as stored.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Bytes of regular files the layer adds, and how many of them later layers overwrite or
    /// delete (dive's "wasted" bytes).
    pub added_bytes: u64,
    pub wasted_bytes: u64,
    /// The Dockerfile instruction that made the layer, from the config history.
    pub created_by: Option<String>,
}
