use clap::{Args, Parser, Subcommand, ValueEnum};
use drydock_checks::Severity;
use drydock_report::Gate;
use drydock_source::Platform;

/// Inspect a built container image before it ships: will it start, and is it lean and clean?
#[derive(Debug, Parser)]
#[command(name = "drydock", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan an image and report what will break, with a score and a gate verdict.
    Scan(ScanArgs),
    /// Print the image's final filesystem, as the layers build it.
    Tree(TreeArgs),
}

/// Which image to read.
#[derive(Debug, Args)]
pub struct Target {
    /// The image: a `docker save` archive (plain or gzip), an OCI archive, an OCI layout
    /// directory, or `-` for an archive on standard input. Prefixes force the format:
    /// `docker-archive:PATH`, `oci-archive:PATH[:TAG]`, `oci:DIR[:TAG]`.
    pub image: String,
    /// In an archive or layout holding several images, the one to scan: NAME[:TAG] as
    /// `docker save` recorded it, an OCI tag, or a manifest digest.
    #[arg(long = "image", value_name = "NAME[:TAG]")]
    pub select: Option<String>,
    /// The platform to take from a multi-platform index (default: this machine's, as docker
    /// does). For a single-platform image, a mismatch is an error.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<Platform>,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub target: Target,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value_t = ScanFormat::Human)]
    pub format: ScanFormat,
    /// Fail (exit 1) when a finding is at or above this severity; `none` never fails.
    #[arg(long, value_name = "SEVERITY", default_value = "critical", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// When to colour the human report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl ScanArgs {
    pub fn gate(&self) -> Gate {
        Gate {
            fail_on: self.fail_on.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FailOn(pub Option<Severity>);

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    if s == "none" {
        Ok(FailOn(None))
    } else {
        s.parse().map(|sev| FailOn(Some(sev)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Colour on a terminal unless `NO_COLOR` is set to anything non-empty (no-color.org).
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(Debug, Args)]
pub struct TreeArgs {
    #[command(flatten)]
    pub target: Target,
    /// `text`: one line per entry; `json`: one JSON object per line.
    #[arg(long, value_enum, default_value_t = TreeFormat::Text)]
    pub format: TreeFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TreeFormat {
    Text,
    Json,
}
