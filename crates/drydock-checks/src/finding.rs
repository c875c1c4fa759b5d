use std::fmt;

/// How bad a finding is. Ordered most severe first.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The container will not start, or its main program will fail.
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Info,
    ];

    /// One level less severe (info stays info).
    pub fn lowered(self) -> Self {
        match self {
            Self::Critical => Self::High,
            Self::High => Self::Medium,
            Self::Medium => Self::Low,
            Self::Low | Self::Info => Self::Info,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|sev| sev.as_str() == s)
            .ok_or_else(|| format!("unknown severity `{s}` (critical, high, medium, low, info)"))
    }
}

/// One problem: what will break, where, and how to fix it.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Finding {
    /// The check's stable id.
    pub id: String,
    pub severity: Severity,
    /// One line, the same for every finding of the check.
    pub title: String,
    /// What will happen and why, for this finding.
    pub message: String,
    /// The path in the image the finding is about.
    pub path: Option<String>,
    /// The index of the layer that wrote `path`.
    pub layer: Option<usize>,
    /// The program that needs what is missing or wrong, when the finding is about one (the
    /// binary that loads the library, the TLS client that needs the CA bundle).
    pub program: Option<String>,
    /// A concrete change that fixes it.
    pub remediation: String,
}
