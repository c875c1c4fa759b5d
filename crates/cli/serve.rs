//! `drydock serve`: the command line over `drydock_serve::Config`, then the server until
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use drydock_serve::{Config, OnMiss};

use crate::exit::{ExitStatus, UsageError};

/// What an admission request gets for an image with no verdict yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnMissArg {
    Deny,
    Warn,
    Allow,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (docs/serve.md); the flags below override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to listen [default: 0.0.0.0:8080].
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub listen: Option<SocketAddr>,
    /// The store of jobs and verdicts: a SQLite file, or a `postgres://` URL that several
    /// replicas share (best in the configuration file: a URL may hold a password)
    /// [default: drydock-serve.db].
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Scans at once [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// A file holding an API token that callers present (`Authorization: Bearer`, Basic's
    /// password, or `X-ScannerAdapter-API-Key`); repeatable.
    #[arg(long, value_name = "FILE")]
    pub token_file: Vec<PathBuf>,
    /// An API token; best given through the environment or --token-file, since `ps` shows a
    /// command line.
    #[arg(long = "token", env = "DRYDOCK_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Serve without any token (a loopback test bed only).
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// The policy file every scan runs under.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for every registry; repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// What admission answers for an image with no verdict yet (a scan is queued unless the
    /// request is a dry run) [default: deny].
    #[arg(long, value_enum)]
    pub on_miss: Option<OnMissArg>,
    /// The time an admission answer may take, in milliseconds [default: 2000].
    #[arg(long, value_name = "MS")]
    pub admission_budget_ms: Option<u64>,
    /// The registry notifications are about when an event names none.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub hook_registry: Option<String>,
}

/// The configuration: the file, then the flags.
fn config(args: ServeArgs) -> Result<Config, UsageError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| UsageError(e.to_string()))?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(store) = args.store {
        config.store = store;
    }
    if let Some(workers) = args.workers {
        config.workers = usize::from(workers);
    }
    config.token_files.extend(args.token_file);
    config.tokens.extend(args.token.filter(|t| !t.is_empty()));
    config.allow_unauthenticated |= args.allow_unauthenticated;
    if args.policy.is_some() {
        config.policy = args.policy;
    }
    config.ca_certs.extend(args.ca_cert);
    if let Some(on_miss) = args.on_miss {
        config.on_miss = match on_miss {
            OnMissArg::Deny => OnMiss::Deny,
            OnMissArg::Warn => OnMiss::Warn,
            OnMissArg::Allow => OnMiss::Allow,
        };
    }
    if let Some(budget) = args.admission_budget_ms {
        config.admission_budget_ms = budget;
    }
    if args.hook_registry.is_some() {
        config.hook_registry = args.hook_registry;
    }
    Ok(config)
}

/// Serves until SIGTERM or SIGINT; a clean stop is exit 0.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitStatus> {
    let config = config(args)?;
    match drydock_serve::run(config) {
        Ok(()) => Ok(ExitStatus::Passed),
        Err(e) if e.is_usage() => Err(UsageError(e.to_string()).into()),
        Err(e) => Err(e).context("drydock serve"),
    }
}
