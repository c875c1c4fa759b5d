use std::fmt::Write as _;

use drydock_checks::Severity;

use drydock_layers::path::printable_str as safe;

use crate::model::Report;

/// How the human report is drawn.
#[derive(Debug, Clone, Copy)]
pub struct HumanOptions {
    /// ANSI colour; the binary decides (a terminal, and no `NO_COLOR`).
    pub color: bool,
    /// Columns to wrap at.
    pub width: usize,
}

impl Default for HumanOptions {
    fn default() -> Self {
        Self {
            color: false,
            width: 80,
        }
    }
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn severity_code(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    }
}

/// Word-wraps `text` to `width` columns, every line starting with `indent`.
/// Image text (paths, history, names) inside `text` reaches the terminal escaped.
fn wrap(out: &mut String, text: &str, indent: &str, width: usize) {
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        let word = &*safe(word);
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
}

pub(crate) fn short_digest(digest: &str) -> &str {
    let end = digest.find(':').map_or(12, |i| i + 13).min(digest.len());
    &digest[..end]
}

/// The report for a person: the image, then findings grouped by severity (most severe first),
/// each with its fix, then one summary line.
pub fn render_human(report: &Report, options: HumanOptions) -> String {
    let color = options.color;
    let width = options.width.max(40);
    let mut out = String::new();
    let image = &report.image;
    let name = image.name();
    let _ = writeln!(out, "{}", paint(&safe(&name), "1", color));
    let digest = image.shown_digest();
    let _ = writeln!(
        out,
        "  {} · {} · {} layer{}",
        safe(short_digest(digest)),
        safe(&image.platform),
        image.layers.len(),
        if image.layers.len() == 1 { "" } else { "s" }
    );
    for note in &report.notes {
        wrap(&mut out, &format!("note: {note}"), "  ", width);
    }
    out.push('\n');
    for severity in Severity::ALL {
        let group: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .collect();
        if group.is_empty() {
            continue;
        }
        let heading = format!("{} ({})", severity.as_str().to_uppercase(), group.len());
        let _ = writeln!(out, "{}", paint(&heading, severity_code(severity), color));
        for finding in group {
            let path = finding.path.as_deref().unwrap_or("(image)");
            let cost = if finding.cost > 0 {
                format!(" (−{})", finding.cost)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {} {}{cost}",
                paint(&finding.id, "1", color),
                safe(path)
            );
            if let Some(layer) = finding.layer.and_then(|i| image.layers.get(i)) {
                let made_by = layer
                    .created_by
                    .as_deref()
                    .map(clean_created_by)
                    .unwrap_or_default();
                let line = if made_by.is_empty() {
                    format!("layer {}", layer.index)
                } else {
                    format!("layer {}: {made_by}", layer.index)
                };
                wrap(&mut out, &line, "    ", width);
            }
            wrap(&mut out, &finding.message, "    ", width);
            wrap(
                &mut out,
                &format!("fix: {}", finding.remediation),
                "    ",
                width,
            );
        }
        out.push('\n');
    }
    if report.findings.is_empty() {
        let _ = writeln!(out, "No findings.\n");
    }
    if let Some(policy) = &report.policy
        && !report.suppressed.is_empty()
    {
        let accepted = format!(
            "{} finding(s) accepted by {}: {}",
            report.suppressed.len(),
            policy.file,
            report
                .suppressed
                .iter()
                .map(|s| format!(
                    "{} {}",
                    s.finding.id,
                    s.finding.path.as_deref().unwrap_or("(image)")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        wrap(&mut out, &accepted, "", width);
        out.push('\n');
    }
    let verdict = if report.passed {
        paint("passed", "32", color)
    } else {
        paint("FAILED", "1;31", color)
    };
    let summary = format!(
        "score {}/100 (grade {:?}) · {} · gate {verdict}",
        report.score,
        report.grade,
        report.severity_counts(),
    );
    let _ = writeln!(out, "{summary}");
    out
}

/// Docker's history strings start with the shell wrapper; people wrote the instruction.
pub(crate) fn clean_created_by(created_by: &str) -> String {
    let trimmed = created_by.trim();
    let trimmed = trimmed
        .strip_prefix("/bin/sh -c #(nop) ")
        .unwrap_or(trimmed);
    let trimmed = trimmed
        .strip_prefix("/bin/sh -c ")
        .map_or(trimmed.to_owned(), |cmd| format!("RUN {cmd}"));
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_within_the_width() {
        let mut out = String::new();
        wrap(&mut out, &"word ".repeat(40), "    ", 30);
        assert!(out.lines().all(|l| l.len() <= 30), "{out}");
        assert_eq!(out.split_whitespace().count(), 40);
    }

    #[test]
    fn history_lines_read_like_dockerfile_instructions() {
        assert_eq!(
            clean_created_by("/bin/sh -c #(nop) COPY file:abc in /app "),
            "COPY file:abc in /app"
        );
        assert_eq!(
            clean_created_by("/bin/sh -c apt-get update"),
            "RUN apt-get update"
        );
        assert_eq!(
            clean_created_by("COPY app /app # buildkit"),
            "COPY app /app # buildkit"
        );
    }
}
