//! `cargo xtask scores`: scans every fixture and writes, into `docs/scoring.md`, the table that
//! explains each one's score (which checks cost what, and the cap). A test in `tests/it` reads
//! the table back and checks it against fresh scans.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};

use crate::cmd;

const BEGIN: &str = "<!-- fixture-scores:begin (cargo xtask scores) -->";
const END: &str = "<!-- fixture-scores:end -->";

/// The image to scan in a fixture directory: the OCI layout when there is one.
pub fn fixture_image(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    // `multi` holds two images; the Go one is the one worth scoring.
    if name == "multi" {
        return Some(format!("oci:{}:go", dir.join("oci").display()));
    }
    ["oci", "docker.tar", "oci.tar"]
        .iter()
        .map(|form| dir.join(form))
        .find(|path| path.exists())
        .map(|path| path.display().to_string())
}

fn row(name: &str, report: &serde_json::Value) -> anyhow::Result<String> {
    let findings = report["findings"].as_array().context("findings")?;
    // Per check, in report order: severity, count, points.
    let mut per_check: BTreeMap<usize, (String, String, usize, u64)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for finding in findings {
        let id = finding["id"].as_str().context("id")?.to_owned();
        let position = match order.iter().position(|known| *known == id) {
            Some(position) => position,
            None => {
                order.push(id.clone());
                order.len() - 1
            }
        };
        let entry = per_check.entry(position).or_insert_with(|| {
            (
                id,
                finding["severity"].as_str().unwrap_or("?").to_owned(),
                0,
                0,
            )
        });
        entry.2 += 1;
        entry.3 += finding["cost"].as_u64().unwrap_or(0);
    }
    let described: Vec<String> = per_check
        .values()
        .map(|(id, severity, count, cost)| {
            let times = if *count > 1 {
                format!(" ×{count}")
            } else {
                String::new()
            };
            let points = if *cost > 0 {
                format!(" −{cost}")
            } else {
                String::new()
            };
            format!("`{id}` {severity}{times}{points}")
        })
        .collect();
    let lost: u64 = per_check.values().map(|(.., cost)| cost).sum();
    let score = report["score"].as_u64().context("score")?;
    let grade = report["grade"].as_str().context("grade")?;
    let uncapped = 100u64.saturating_sub(lost);
    let mut arithmetic = if lost == 0 {
        "100".to_owned()
    } else {
        format!("100 − {lost} = {uncapped}")
    };
    if uncapped != score {
        let _ = write!(arithmetic, ", capped at {score} (critical)");
    }
    Ok(format!(
        "| `{name}` | {} | {arithmetic}: **{score} {grade}** |",
        if described.is_empty() {
            "none".to_owned()
        } else {
            described.join("; ")
        }
    ))
}

pub fn write(root: &Path, fixtures: &Path) -> anyhow::Result<()> {
    let binary = root.join("target/release/drydock");
    cmd::run(cmd::cargo().args(["build", "--release", "--quiet", "--bin", "drydock"]))?;
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures)
        .with_context(|| format!("reading {}", fixtures.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        // The main set's images; fixture groups (with a stamp of their own) have suites of
        // their own.
        .filter(|path| path.is_dir() && !path.join(".stamp").exists())
        .collect();
    dirs.sort();
    let mut table = String::from(
        "| fixture | findings, and the points each check cost | score |\n|---|---|---|\n",
    );
    for dir in dirs {
        let Some(image) = fixture_image(&dir) else {
            continue;
        };
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let output = std::process::Command::new(&binary)
            .args(["scan", "--format", "json", "--no-policy", "--quiet", &image])
            .output()
            .with_context(|| format!("scanning {image}"))?;
        if !matches!(output.status.code(), Some(0 | 1)) {
            bail!(
                "scanning {image}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        table.push_str(&row(name, &report)?);
        table.push('\n');
    }
    let path = root.join("docs/scoring.md");
    let doc = std::fs::read_to_string(&path)?;
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        bail!("{} has no {BEGIN} … {END} markers", path.display());
    };
    let updated = format!("{}{BEGIN}\n{table}{}", &doc[..start], &doc[end..]);
    std::fs::write(&path, updated)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
