//! The report: one model, one score, every format.
//!
//! This crate owns the [`Report`] (the versioned JSON contract pipelines consume), the score and
//! grade ([`score`], explained in `docs/scoring.md`), the gate ([`Gate`]) and the renderers
//! (human text and JSON for now). It is the only crate that knows output formats.
//!
//! It must never decide anything about the image itself (that is the checks' job), never touch a
//! terminal (the binary says whether colour is wanted), and never break the JSON contract:
//! fields are added, never renamed or removed, without a new `schema_version`.

mod human;
mod model;
mod score;

pub use human::{HumanOptions, render_human};
pub use model::{ImageInfo, LayerReport, Report, ReportFinding, SCHEMA_VERSION};
pub use score::{Gate, Grade, costs, score};

/// The report as pretty-printed JSON.
pub fn render_json(report: &Report) -> String {
    let mut json =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
