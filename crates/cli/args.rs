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
    /// Log what drydock does on standard error: -v steps, -vv requests and layers, -vvv
    /// everything (credentials are never logged).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress display and no warnings on standard error; errors are still printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan an image and report what will break, with a score and a gate verdict.
    Scan(ScanArgs),
    /// Gate on the report an earlier `scan --attach` published next to the image, without
    /// scanning again: exit 0 or 1 like `scan`, 5 when there is no verdict (none attached, or
    /// older than `--max-age`).
    Verdict(VerdictArgs),
    /// Run drydock as a service: scan on registry push, answer Harbor's scanner API and
    /// Kubernetes admission from stored verdicts (docs/serve.md).
    Serve(crate::serve::ServeArgs),
    /// Print the image's final filesystem, as the layers build it.
    Tree(TreeArgs),
    /// Show what drydock knows about one file: ELF facts, and where the loader finds each
    /// library it needs.
    Inspect(InspectArgs),
    /// List every check with its id, severity and summary.
    Checks,
    /// Print the page of a check: what breaks, what drydock checks, how to fix it.
    Explain {
        /// A check id, e.g. elf.library-missing.
        id: String,
    },
    /// Print a shell completion script, e.g. `drydock completions bash >
    /// /etc/bash_completion.d/drydock`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of the `--format json` report.
    #[command(hide = true)]
    JsonSchema,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub target: Target,
    /// The file inside the image, e.g. /app/server.
    pub path: String,
    /// `text` or `json`.
    #[arg(long, value_enum, default_value_t = TreeFormat::Text)]
    pub format: TreeFormat,
}

/// Which image to read.
#[derive(Debug, Args)]
pub struct Target {
    /// The image: a reference (`alpine:3.20`, `registry:5000/team/app@sha256:…`), or a local
    /// file: a `docker save` archive (plain, or compressed with gzip, bzip2, xz or zstd), an
    /// OCI archive, an OCI layout directory, a skopeo `dir:` directory, `-` for an archive on
    /// standard input. Prefixes force the source: `docker://REF`, `docker-daemon:NAME[:TAG]`,
    /// `docker-archive:PATH`, `oci-archive:PATH[:TAG]`, `oci:DIR[:TAG]`, `dir:DIR`.
    pub image: String,
    /// Where a reference is looked up: `auto` tries a local Docker/podman engine that holds the
    /// image, then the registry; an existing path is always a local file.
    #[arg(long, value_enum, default_value_t = SourceChoice::Auto)]
    pub source: SourceChoice,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// In an archive or layout holding several images, the one to scan: NAME[:TAG] as
    /// `docker save` recorded it, an OCI tag, or a manifest digest.
    #[arg(long = "image", value_name = "NAME[:TAG]")]
    pub select: Option<String>,
    /// The platform to take from a multi-platform index (default: this machine's, as docker
    /// does). For a single-platform image, a mismatch is an error.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<Platform>,
    /// The largest uncompressed layer read (e.g. 64GiB, 500MB) [default: 64GiB, or the
    /// policy's `[limits] max-layer-size`].
    #[arg(long, value_name = "SIZE", value_parser = drydock_layers::parse_byte_size)]
    pub max_layer_size: Option<u64>,
    /// How many times its compressed size an image may expand to, past the first 2 GiB; a
    /// decompression bomb is refused beyond it [default: 200, or the policy's
    /// `[limits] max-expansion`].
    #[arg(long, value_name = "RATIO", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_expansion: Option<u64>,
}

impl Target {
    /// The limits of a scan: the command line first, then the policy file, then the defaults.
    pub fn limits(&self, policy: Option<&drydock_report::Policy>) -> drydock_layers::Limits {
        let defaults = drydock_layers::Limits::default();
        drydock_layers::Limits {
            max_tar_bytes: self
                .max_layer_size
                .or_else(|| policy.and_then(|p| p.max_layer_size))
                .unwrap_or(defaults.max_tar_bytes),
            max_expansion: self
                .max_expansion
                .or_else(|| policy.and_then(|p| p.max_expansion))
                .unwrap_or(defaults.max_expansion),
            ..defaults
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceChoice {
    Auto,
    /// A file or directory (archive, layout).
    Local,
    /// The local Docker or podman engine (`DOCKER_HOST`, else the default sockets).
    Engine,
    /// The registry the reference names.
    Registry,
}

/// How to reach a registry.
#[derive(Debug, Args)]
#[command(next_help_heading = "Registry")]
pub struct RegistryArgs {
    /// A PEM file of CA certificates to trust beside the system's (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<std::path::PathBuf>,
    /// Allow plain HTTP and unverified TLS for any registry (loopback registries may always
    /// speak plain HTTP, as with docker).
    #[arg(long)]
    pub insecure: bool,
    /// User name for the registry; the password is read from standard input.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password (or token) from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Where verified blobs are kept between scans (default: $XDG_CACHE_HOME/drydock).
    #[arg(long, value_name = "DIR", env = "DRYDOCK_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Download every blob, keeping nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Keep blobs but not layer facts: walk every layer (the facts cache is on by default for
    /// registry images, and for local ones with --cache-dir).
    #[arg(long, hide = true)]
    pub no_facts_cache: bool,
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
    /// Also write the report in FORMAT to FILE (repeatable): `--output sarif=drydock.sarif
    /// --output junit=drydock.xml`.
    #[arg(long, value_name = "FORMAT=FILE", value_parser = parse_output)]
    pub output: Vec<(ScanFormat, std::path::PathBuf)>,
    /// Fail (exit 1) when a finding is at or above this severity; `none` never fails
    /// [default: critical, or the policy's `fail-on`].
    #[arg(long, value_name = "SEVERITY", value_parser = parse_fail_on)]
    pub fail_on: Option<FailOn>,
    /// Also fail when the score is below this (0-100) [default: the policy's `min-score`].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub min_score: Option<u32>,
    /// The policy file [default: drydock.toml in the working directory, when there is one].
    #[arg(long, value_name = "FILE", conflicts_with = "no_policy")]
    pub policy: Option<std::path::PathBuf>,
    /// Ignore drydock.toml in the working directory.
    #[arg(long)]
    pub no_policy: bool,
    /// When to colour the human report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// After the scan, push the verdict into the image's repository as OCI referrers of the
    /// scanned manifest (`--attach` alone: report,sarif). Needs push access; the referrers
    /// API is used when the registry has it, else the `sha256-<hex>` tag index.
    #[arg(
        long,
        value_name = "KIND,...",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        value_delimiter = ',',
        default_missing_value = "report,sarif"
    )]
    pub attach: Option<Vec<AttachKind>>,
}

/// A document `--attach` pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum AttachKind {
    /// The JSON report, what `drydock verdict` reads back.
    Report,
    /// SARIF 2.1.0 (for Ratify and SARIF-aware tools).
    Sarif,
    /// The unsigned in-toto statement (for `cosign attest`).
    Intoto,
}

impl AttachKind {
    pub fn kind(self) -> drydock_scan::AttachKind {
        match self {
            Self::Report => drydock_scan::AttachKind::Report,
            Self::Sarif => drydock_scan::AttachKind::Sarif,
            Self::Intoto => drydock_scan::AttachKind::Intoto,
        }
    }
}

#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// The image in its registry, by tag or digest (`registry:5000/team/app:1.2`).
    pub image: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// For a multi-platform index, check only this platform (default: every platform; the
    /// worst verdict wins).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<Platform>,
    /// What to print: the stored report, as `scan` prints it (json: one report, or a list of
    /// them for several platforms).
    #[arg(long, value_enum, default_value_t = VerdictFormat::Human)]
    pub format: VerdictFormat,
    /// Fail (exit 1) when a finding is at or above this severity; `none` never fails
    /// [default: the gate the scan used].
    #[arg(long, value_name = "SEVERITY", value_parser = parse_fail_on)]
    pub fail_on: Option<FailOn>,
    /// Also fail when the score is below this (0-100) [default: the gate the scan used].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub min_score: Option<u32>,
    /// A report older than this is no verdict (exit 5): e.g. 24h, 7d, 90m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<std::time::Duration>,
    /// When to colour the human report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerdictFormat {
    Human,
    Json,
}

/// `24h`, `7d`, `1h30m`, `90s`, `2w`: whole numbers with units s, m, h, d (24 h), w.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut parts = 0;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{c}` (use s, m, h, d or w: 24h, 7d)"
                ));
            }
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("`{s}`: a number must come before `{c}` (e.g. 24h)"))?;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{s}` is too long"))?;
        number.clear();
        parts += 1;
    }
    if !number.is_empty() || parts == 0 {
        return Err(format!("`{s}` needs a unit (e.g. 24h, 7d, 90m)"));
    }
    Ok(std::time::Duration::from_secs(total))
}

impl ScanArgs {
    /// The gate: the command line first, then the policy file, then the defaults.
    pub fn gate(&self, policy: Option<&drydock_report::Policy>) -> Gate {
        let defaults = Gate::default();
        Gate {
            fail_on: self
                .fail_on
                .map(|f| f.0)
                .or_else(|| policy.and_then(|p| p.fail_on))
                .unwrap_or(defaults.fail_on),
            min_score: self.min_score.or_else(|| policy.and_then(|p| p.min_score)),
        }
    }
}

fn parse_output(s: &str) -> Result<(ScanFormat, std::path::PathBuf), String> {
    let (format, file) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not FORMAT=FILE (e.g. sarif=drydock.sarif)"))?;
    let format = ScanFormat::from_str(format, true).map_err(|_| {
        let known: Vec<String> = ScanFormat::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect();
        format!("unknown format `{format}` ({})", known.join(", "))
    })?;
    if file.is_empty() {
        return Err(format!("`{s}` names no file"));
    }
    Ok((format, file.into()))
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
    /// For a person: grouped by severity, each finding with its fix.
    Human,
    /// The versioned contract of docs/report.md.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML, one test case per check.
    Junit,
    /// Markdown, for a pull-request comment.
    Markdown,
    /// An in-toto Statement v1 with drydock's predicate, for `cosign attest`.
    Intoto,
    /// An in-toto Statement v1 with the standard test-result predicate.
    IntotoTestResult,
    /// GitLab's Code Quality report, every finding with a stable fingerprint.
    GitlabCodequality,
}

impl ScanFormat {
    pub fn format(self) -> drydock_report::Format {
        match self {
            Self::Human => drydock_report::Format::Human,
            Self::Json => drydock_report::Format::Json,
            Self::Sarif => drydock_report::Format::Sarif,
            Self::Junit => drydock_report::Format::Junit,
            Self::Markdown => drydock_report::Format::Markdown,
            Self::Intoto => drydock_report::Format::Intoto,
            Self::IntotoTestResult => drydock_report::Format::IntotoTestResult,
            Self::GitlabCodequality => drydock_report::Format::GitlabCodequality,
        }
    }
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
