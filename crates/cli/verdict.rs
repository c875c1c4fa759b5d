//! `drydock verdict`: the gate from a stored report, for promotion steps and admission hooks.

use std::io::IsTerminal;

use drydock_report::{Gate, HumanOptions, Report};
use drydock_scan::{PlatformVerdict, VerdictRequest};

use crate::args::{VerdictArgs, VerdictFormat};
use crate::exit::ExitStatus;

/// Why one image manifest has no usable verdict.
enum Missing {
    None,
    Stale { age: std::time::Duration },
}

pub fn run(args: VerdictArgs, quiet: bool) -> anyhow::Result<ExitStatus> {
    let request = VerdictRequest {
        image: args.image.clone(),
        registry: crate::request::registry_options(&args.registry)?,
        platform: args.platform.clone(),
    };
    let verdicts = drydock_scan::read_verdicts(&request)?;
    let now = jiff::Timestamp::now();
    let mut reports: Vec<Report> = Vec::new();
    let mut missing = Vec::new();
    let mut failed = false;
    for image in &verdicts.images {
        let label = label(image);
        let Some(stored) = &image.found else {
            missing.push((label, Missing::None, image.refused.clone()));
            continue;
        };
        let mut report = stored.report.clone();
        let age = scanned_at(&report)
            .map(|at| now.duration_since(at).unsigned_abs())
            .unwrap_or(std::time::Duration::MAX);
        if let Some(max_age) = args.max_age
            && age > max_age
        {
            missing.push((label, Missing::Stale { age }, Vec::new()));
            continue;
        }
        let gate = Gate {
            fail_on: args.fail_on.map_or(report.gate.fail_on, |f| f.0),
            min_score: args.min_score.or(report.gate.min_score),
        };
        let findings: Vec<_> = report.findings.iter().map(|f| f.finding.clone()).collect();
        report.passed = gate.passes(&findings, report.score);
        report.gate = drydock_report::GateReport {
            fail_on: gate.fail_on,
            min_score: gate.min_score,
        };
        failed |= !report.passed;
        if !quiet {
            eprintln!(
                "drydock: {label}: report {} ({}), scanned {} ago",
                short(&stored.referrer),
                match stored.method {
                    drydock_scan::ReferrersMethod::Api => "referrers API",
                    drydock_scan::ReferrersMethod::TagSchema => "referrers tag",
                },
                humanise(age)
            );
        }
        reports.push(report);
    }
    for (label, why, refused) in &missing {
        let mut message = match why {
            Missing::None => format!("{label}: no drydock report is attached"),
            Missing::Stale { age } => format!(
                "{label}: the newest drydock report is {} old, past --max-age",
                humanise(*age)
            ),
        };
        if !refused.is_empty() {
            message.push_str(&format!(
                " (passed over: {})",
                drydock_layers::path::printable_str(&refused.join("; "))
            ));
        }
        eprintln!("drydock: no verdict: {message}; scan it with `drydock scan --attach`");
    }
    let color = args.color.enabled(std::io::stdout().is_terminal());
    let out = match args.format {
        VerdictFormat::Human => reports
            .iter()
            .map(|r| {
                drydock_report::render(
                    r,
                    drydock_report::Format::Human,
                    HumanOptions { color, width: 80 },
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        VerdictFormat::Json if verdicts.images.len() == 1 => reports
            .first()
            .map(drydock_report::render_json)
            .unwrap_or_default(),
        VerdictFormat::Json => {
            let mut json = serde_json::to_string_pretty(&reports)?;
            json.push('\n');
            json
        }
    };
    crate::write_stdout(out.as_bytes())?;
    // A definite failure outranks a missing verdict: the pipeline learns the worst it knows.
    Ok(if failed {
        ExitStatus::GateFailed
    } else if !missing.is_empty() {
        ExitStatus::NoVerdict
    } else {
        ExitStatus::Passed
    })
}

fn label(image: &PlatformVerdict) -> String {
    match &image.platform {
        Some(platform) => format!("{platform} ({})", short(&image.digest)),
        None => short(&image.digest).to_owned(),
    }
}

fn short(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    digest.get(..end).unwrap_or(digest)
}

fn scanned_at(report: &Report) -> Option<jiff::Timestamp> {
    report.scanned_at.parse().ok()
}

fn humanise(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        u64::MAX => "of unknown age".into(),
        0..120 => format!("{seconds}s"),
        120..7200 => format!("{}m", seconds / 60),
        7200..172_800 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}
