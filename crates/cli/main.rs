//! The `drydock` command: parses arguments, runs the pipeline, renders the report and decides
//! the exit code. The only code that knows about terminals and exit codes.

mod args;
mod exit;
mod inspect;
mod pages;
mod pipeline;
mod tree;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, ScanArgs, ScanFormat};
use crate::exit::{ExitStatus, failure_status};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match run(cli) {
        Ok(status) => status,
        Err(error) => {
            let status = failure_status(&error);
            eprintln!("drydock: error: {}", one_line(&format!("{error:#}")));
            status
        }
    };
    ExitCode::from(status as u8)
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Scan(args) => scan(args),
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
        Command::Explain { id } => match pages::page(&id) {
            Some(page) => {
                write_stdout(page.as_bytes())?;
                Ok(ExitStatus::Passed)
            }
            None => Err(pipeline::ScanError::Usage(format!(
                "no check `{id}`; `drydock checks` lists them"
            ))
            .into()),
        },
    }
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitStatus> {
    let scanned = pipeline::load(&args.target)?;
    let report = pipeline::report(&scanned, args.gate());
    let rendered = match args.format {
        ScanFormat::Json => drydock_report::render_json(&report),
        ScanFormat::Human => {
            let color = args.color.enabled(std::io::stdout().is_terminal());
            drydock_report::render_human(&report, drydock_report::HumanOptions { color, width: 80 })
        }
    };
    write_stdout(rendered.as_bytes())?;
    Ok(if report.passed {
        ExitStatus::Passed
    } else {
        ExitStatus::GateFailed
    })
}

/// Errors quote image content (names, tar parser messages): escape control characters so that
/// an image can neither break the one-line error format nor drive the terminal.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
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
