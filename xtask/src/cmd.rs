use std::process::Command;

use anyhow::{Context, bail};

/// Runs a command, echoing it, and fails when it fails.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("starting {}", describe(command)))?;
    if !status.success() {
        bail!("{} failed: {status}", describe(command));
    }
    Ok(())
}

/// Runs `cargo test` (or another libtest runner), passing its output through, and ends with
/// one line of totals over every test binary and doc-test run, so that whoever reads the end
/// of a CI log sees what ran (cargo's own last line is the last binary's, often 0 doc-tests).
pub fn run_tests(command: &mut Command) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader, Write};
    eprintln!("$ {}", describe(command));
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", describe(command)))?;
    let stdout = child.stdout.take().context("the test runner's output")?;
    let mut totals = TestTotals::default();
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the test runner's output")?;
        totals.add_line(&line);
        writeln!(out, "{line}")?;
    }
    let status = child.wait()?;
    writeln!(out, "{}", totals.summary())?;
    out.flush()?;
    if !status.success() {
        bail!("{} failed: {status}", describe(command));
    }
    if totals.failed > 0 {
        bail!("{} tests failed", totals.failed);
    }
    Ok(())
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; …` lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TestTotals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl TestTotals {
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(number), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }

    /// `N passed, N failed` (`, N skipped` when some were ignored), alone on its line.
    pub fn summary(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.ignored > 0 {
            line.push_str(&format!(", {} skipped", self.ignored));
        }
        line
    }
}

/// Runs a command quietly and returns its standard output.
pub fn output(command: &mut Command) -> anyhow::Result<String> {
    let out = command
        .output()
        .with_context(|| format!("starting {}", describe(command)))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}\n{}",
            describe(command),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn describe(command: &Command) -> String {
    let mut parts = vec![command.get_program().to_string_lossy().into_owned()];
    parts.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_every_result_line() {
        let mut totals = TestTotals::default();
        totals.add_line("test result: ok. 26 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.05s");
        totals.add_line("test result: FAILED. 20 passed; 1 failed; 2 ignored; 0 measured; 89 filtered out; finished in 6.18s");
        totals.add_line("test foo ... ok");
        totals.add_line("running 0 tests");
        assert_eq!(
            totals,
            TestTotals {
                passed: 46,
                failed: 1,
                ignored: 2
            }
        );
        assert_eq!(totals.summary(), "46 passed, 1 failed, 2 skipped");
    }
}
