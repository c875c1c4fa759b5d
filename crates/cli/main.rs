//! The `drydock` command, a thin front end over `drydock-scan`: parses arguments into a scan
//! request, loads the policy file, shows progress, renders the report and decides the exit
//! code. The only code that knows about terminals and exit codes.

mod args;
mod exit;
mod inspect;
mod progress;
mod request;
mod serve;
mod tree;
mod verdict;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command, ScanArgs, ScanFormat};
use crate::exit::{ExitStatus, UsageError, failure_status};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let status = match run(cli) {
        Ok(status) => status,
        Err(error) => {
            let status = failure_status(&error);
            eprintln!("drydock: error: {}", one_line(&chain(&error)));
            status
        }
    };
    ExitCode::from(status as u8)
}

/// Logs go to standard error, only drydock's own until -vvv; `DRYDOCK_LOG` takes env_logger
/// filters for finer control.
fn init_logging(verbose: u8, quiet: bool) {
    let filters = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => {
            "warn,drydock=info,drydock_scan=info,drydock_source=info,drydock_registry=info,\
             drydock_serve=info"
        }
        (false, 2) => {
            "warn,drydock=debug,drydock_scan=debug,drydock_source=debug,drydock_registry=debug,\
             drydock_layers=debug,drydock_serve=debug"
        }
        (false, _) => "trace",
    };
    // rustls-platform-verifier logs every refused certificate as an error of its own; drydock
    // reports the refusal itself, with the registry and what to do, so it would say it twice.
    let filters = if verbose > 2 {
        filters.to_owned()
    } else {
        format!("{filters},rustls_platform_verifier=off")
    };
    let with_target = verbose > 2;
    env_logger::Builder::new()
        .parse_filters(&filters)
        .parse_env("DRYDOCK_LOG")
        // Log lines quote image content (history, names): escaped, one line each.
        .format(move |buf, record| {
            use std::io::Write as _;
            let message = record.args().to_string();
            let level = buf.default_level_style(record.level());
            write!(
                buf,
                "[{} {level}{}{level:#}",
                buf.timestamp_millis(),
                record.level()
            )?;
            if with_target {
                write!(buf, " {}", record.target())?;
            }
            writeln!(buf, "] {}", drydock_layers::path::printable_str(&message))
        })
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let show_progress = !cli.quiet && cli.verbose == 0;
    match cli.command {
        Command::Scan(args) => scan(args, show_progress, cli.quiet),
        Command::Verdict(args) => verdict::run(args, cli.quiet),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "drydock", &mut out);
            write_stdout(&out)?;
            Ok(ExitStatus::Passed)
        }
        Command::JsonSchema => {
            write_stdout(drydock_report::json_schema().as_bytes())?;
            Ok(ExitStatus::Passed)
        }
        Command::Serve(args) => serve::run(args),
        Command::Tree(args) => tree::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Checks => {
            let mut out = String::new();
            for check in drydock_checks::all() {
                out.push_str(&format!(
                    "{:<32} {:<8} {}\n",
                    check.id(),
                    check.severity(),
                    check.summary()
                ));
            }
            write_stdout(out.as_bytes())?;
            Ok(ExitStatus::Passed)
        }
        Command::Explain { id } => match drydock_checks::page(&id) {
            Some(page) => {
                write_stdout(page.as_bytes())?;
                Ok(ExitStatus::Passed)
            }
            None => Err(UsageError(format!("no check `{id}`; `drydock checks` lists them")).into()),
        },
    }
}

/// The policy `--policy` names, else `drydock.toml` in the working directory.
fn load_policy(args: &ScanArgs) -> anyhow::Result<Option<drydock_report::Policy>> {
    let path = match &args.policy {
        Some(path) => path.clone(),
        None if args.no_policy => return Ok(None),
        None => {
            let default = std::path::PathBuf::from("drydock.toml");
            if !default.is_file() {
                return Ok(None);
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("{}: cannot read the policy: {e}", path.display())))?;
    let catalogue = drydock_scan::catalogue();
    let policy = drydock_report::Policy::parse(&text, &path.display().to_string(), &catalogue)
        .map_err(|e| UsageError(e.to_string()))?;
    log::info!("policy {}", path.display());
    Ok(Some(policy))
}

fn scan(args: ScanArgs, show_progress: bool, quiet: bool) -> anyhow::Result<ExitStatus> {
    let policy = load_policy(&args)?;
    let progress = progress::Progress::new(show_progress && std::io::stderr().is_terminal());
    let request = request::scan_request(&args.target, policy.as_ref())?;
    let gate = args.gate(policy.as_ref());
    let report = drydock_scan::scan(&request, gate, policy.as_ref(), &progress)?;
    progress.finish();
    for note in &report.notes {
        log::warn!("{note}");
    }
    let render = |format: ScanFormat, color: bool| {
        drydock_report::render(
            &report,
            format.format(),
            drydock_report::HumanOptions { color, width: 80 },
        )
    };
    for (format, path) in &args.output {
        std::fs::write(path, render(*format, false)).map_err(|e| {
            UsageError(format!(
                "cannot write the {} report to {}: {e}",
                format.format().name(),
                path.display()
            ))
        })?;
    }
    let color = args.color.enabled(std::io::stdout().is_terminal());
    write_stdout(render(args.format, color).as_bytes())?;
    if let Some(kinds) = &args.attach {
        let mut kinds: Vec<_> = kinds.iter().map(|k| k.kind()).collect();
        kinds.sort();
        kinds.dedup();
        let attached = drydock_scan::attach(&request, &report, &kinds)?;
        if !quiet {
            let current: Vec<String> = attached
                .current
                .iter()
                .map(|(kind, digest)| format!("{kind} {digest}"))
                .collect();
            eprintln!(
                "drydock: attached to {}: {}{}",
                report.image.shown_digest(),
                if current.is_empty() {
                    "nothing new (newer drydock referrers are already there)".to_owned()
                } else {
                    current.join(", ")
                },
                match attached.method {
                    drydock_scan::ReferrersMethod::Api => " (referrers API)".to_owned(),
                    drydock_scan::ReferrersMethod::TagSchema => format!(
                        " (referrers tag; {} replaced, {} dangling pruned)",
                        attached.replaced.len(),
                        attached.pruned.len()
                    ),
                }
            );
        }
    }
    Ok(if report.passed {
        ExitStatus::Passed
    } else {
        ExitStatus::GateFailed
    })
}

/// The error and its causes on one line; a cause whose text the message already quotes (a
/// library error that embeds its source) is not repeated.
fn chain(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

/// Errors quote image content (names, tar parser messages): escape control characters so that
/// an image can neither break the one-line error format nor drive the terminal.
fn one_line(message: &str) -> String {
    let mut out = drydock_layers::path::printable_str(message).into_owned();
    if out.len() > 1000 {
        let cut = (0..=1000)
            .rev()
            .find(|&i| out.is_char_boundary(i))
            .unwrap_or(0);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Writes to stdout; a closed pipe (`drydock scan … | head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
