//! Markdown, for a pull-request or merge-request comment: the verdict first, a table a reviewer
//! scans, and the fixes folded underneath.

use std::fmt::Write as _;

use crate::human::{clean_created_by, short_digest};
use crate::model::Report;

/// Text from the image (paths, history) must not become markup: escape what GitHub and GitLab
/// would interpret inside a table cell.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            // GitHub and GitLab turn `https://…` and `www.…` into links by themselves.
            ':' if chars.peek() == Some(&'/') => out.push_str("\\:"),
            '.' if out.ends_with("www") => out.push_str("\\."),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push_str(&drydock_layers::path::printable_str(
                c.encode_utf8(&mut [0; 4]),
            )),
        }
    }
    out
}

/// A path as inline code: code spans show it verbatim, only backticks need a longer fence.
fn code(text: &str) -> String {
    let clean = drydock_layers::path::printable_str(text).replace('|', "\\|");
    if clean.contains('`') {
        format!("`` {clean} ``")
    } else {
        format!("`{clean}`")
    }
}

/// The report as Markdown.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let image = &report.image;
    let name = image.name();
    let verdict = if report.passed {
        "passed"
    } else {
        "**failed**"
    };
    let _ = writeln!(
        out,
        "### drydock: {} scored {}/100 (grade {:?}), gate {verdict}\n",
        code(&name),
        report.score,
        report.grade
    );
    let digest = image.shown_digest();
    let _ = writeln!(
        out,
        "{} · {} · {} layer{}{}\n",
        code(short_digest(digest)),
        escape(&image.platform),
        image.layers.len(),
        if image.layers.len() == 1 { "" } else { "s" },
        if report.runnable {
            String::new()
        } else {
            " · **the container will not start or its program fails**".to_owned()
        }
    );
    if report.findings.is_empty() {
        out.push_str("No findings.\n");
    } else {
        out.push_str("| Severity | Check | Path | What breaks |\n|---|---|---|---|\n");
        for f in &report.findings {
            let _ = writeln!(
                out,
                "| {} | [{}]({}) | {} | {} |",
                f.severity,
                code(&f.id),
                f.docs,
                f.path
                    .as_deref()
                    .map(code)
                    .unwrap_or_else(|| "(image)".into()),
                escape(&f.message)
            );
        }
        out.push_str("\n<details><summary>How to fix</summary>\n\n");
        for f in &report.findings {
            let _ = write!(
                out,
                "- {} {}: {}",
                code(&f.id),
                f.path
                    .as_deref()
                    .map(code)
                    .unwrap_or_else(|| "(image)".into()),
                escape(&f.remediation)
            );
            if let (Some(layer), Some(created_by)) = (f.layer, &f.created_by) {
                let _ = write!(
                    out,
                    " (layer {layer}: {})",
                    code(&clean_created_by(created_by))
                );
            }
            out.push('\n');
        }
        out.push_str("\n</details>\n");
    }
    if !report.suppressed.is_empty() {
        let _ = writeln!(
            out,
            "\n{} finding(s) accepted by the policy:\n",
            report.suppressed.len()
        );
        for s in &report.suppressed {
            let _ = writeln!(
                out,
                "- {} {}: {}",
                code(&s.finding.id),
                s.finding
                    .path
                    .as_deref()
                    .map(code)
                    .unwrap_or_else(|| "(image)".into()),
                escape(&s.ignore.reason)
            );
        }
    }
    if !report.notes.is_empty() {
        out.push('\n');
        for note in &report.notes {
            let _ = writeln!(out, "> {}", escape(note));
        }
    }
    let _ = writeln!(
        out,
        "\n<sub>{} · drydock {}</sub>",
        report.severity_counts(),
        report.tool.version
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_text_cannot_become_markup() {
        assert_eq!(escape("a|b <img> [x](y)"), "a\\|b \\<img\\> \\[x\\](y)");
        assert_eq!(
            escape("see https://evil.example and www.evil.example &amp; ![i]"),
            "see https\\://evil.example and www\\.evil.example \\&amp; \\!\\[i\\]"
        );
        assert_eq!(escape("a\u{1b}]0;t\u{7}b"), "a\\u{1b}\\]0;t\\u{7}b");
        assert_eq!(code("/app/\u{1b}[2J"), "`/app/\\u{1b}[2J`");
        assert_eq!(code("/app/a`b|c"), "`` /app/a`b\\|c ``");
        assert_eq!(code("/app/server"), "`/app/server`");
    }
}
