//! The report: one model, one score, every format.
//!
//! This crate owns the [`Report`] (the versioned JSON contract pipelines consume), the score and
//! grade ([`score`], explained in `docs/scoring.md`), the gate ([`Gate`]) and the renderers
//! (human, JSON, SARIF, JUnit XML, Markdown, in-toto Statements, GitLab Code Quality), and the
//! policy file that adjusts the gate, the
//! severities and what is accepted ([`Policy`]). It is the only crate that knows output formats.
//!
//! It must never decide anything about the image itself (that is the checks' job), never touch a
//! terminal (the binary says whether colour is wanted), and never break the JSON contract:
//! fields are added, never renamed or removed, without a new `schema_version`.

mod codequality;
pub mod harbor;
mod human;
mod intoto;
mod junit;
mod markdown;
mod model;
mod policy;
mod sarif;
mod score;

pub use codequality::render_codequality;
pub use human::{HumanOptions, render_human};
pub use intoto::{
    MIN_SCORE_TEST, REPORT_PREDICATE_TYPE, STATEMENT_TYPE, TEST_RESULT_PREDICATE_TYPE,
    render_intoto, render_intoto_test_result,
};
pub use junit::render_junit;
pub use markdown::render_markdown;
pub use model::{
    GateReport, IgnoreReport, ImageInfo, LayerReport, PolicyReport, Report, ReportFinding,
    ReportInput, SCHEMA_VERSION, SuppressedFinding, ToolInfo,
};
pub use policy::{Applied, Ignore, Policy, PolicyError};
pub use sarif::{render_sarif, security_severity};
pub use score::{Gate, Grade, costs, score};

/// Every output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Junit,
    Markdown,
    /// An in-toto Statement with drydock's predicate.
    Intoto,
    /// An in-toto Statement with the standard test-result predicate.
    IntotoTestResult,
    GitlabCodequality,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Self::Human,
        Self::Json,
        Self::Sarif,
        Self::Junit,
        Self::Markdown,
        Self::Intoto,
        Self::IntotoTestResult,
        Self::GitlabCodequality,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Json => "json",
            Self::Sarif => "sarif",
            Self::Junit => "junit",
            Self::Markdown => "markdown",
            Self::Intoto => "intoto",
            Self::IntotoTestResult => "intoto-test-result",
            Self::GitlabCodequality => "gitlab-codequality",
        }
    }
}

/// Renders the report in `format`; `human` is the only one drawn with options.
pub fn render(report: &Report, format: Format, human: HumanOptions) -> String {
    match format {
        Format::Human => render_human(report, human),
        Format::Json => render_json(report),
        Format::Sarif => render_sarif(report),
        Format::Junit => render_junit(report),
        Format::Markdown => render_markdown(report),
        Format::Intoto => render_intoto(report),
        Format::IntotoTestResult => render_intoto_test_result(report),
        Format::GitlabCodequality => render_codequality(report),
    }
}

/// The JSON Schema of the report, generated from the types (checked in as
/// `docs/report.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Report);
    let mut json =
        serde_json::to_string_pretty(&schema).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

/// The report as pretty-printed JSON.
pub fn render_json(report: &Report) -> String {
    let mut json =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
