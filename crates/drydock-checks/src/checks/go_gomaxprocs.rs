//! `go.gomaxprocs`: a Go program older than Go 1.25 sizes its scheduler by the machine's CPUs,
//! not the container's CPU limit, and is throttled under a quota.

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct Gomaxprocs;

/// `go1.24.3` → (1, 24).
fn version(go: &str) -> Option<(u32, u32)> {
    let rest = go.strip_prefix("go")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Check for Gomaxprocs {
    fn id(&self) -> &'static str {
        "go.gomaxprocs"
    }

    fn severity(&self) -> Severity {
        Severity::Low
    }

    fn summary(&self) -> &'static str {
        "A Go program before Go 1.25 that ignores the container's CPU limit (no automaxprocs, no GOMAXPROCS)"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        if cx.config.env_var("GOMAXPROCS").is_some() {
            return Vec::new();
        }
        let Some((entry, node)) = cx.analysis().entrypoint.clone() else {
            return Vec::new();
        };
        let Some(facts) = cx.tree.entry(node).fact.and_then(|f| f.elf()) else {
            return Vec::new();
        };
        let Some(go) = &facts.go else {
            return Vec::new();
        };
        let Some((major, minor)) = version(&go.go_version) else {
            return Vec::new();
        };
        if (major, minor) >= (1, 25) || go.depends_on("go.uber.org/automaxprocs") {
            return Vec::new();
        }
        vec![Finding {
            program: Some(entry.clone()),
            id: self.id().into(),
            severity: self.severity(),
            title: "GOMAXPROCS ignores the CPU limit".into(),
            message: format!(
                "{entry} is built with {}, which sets GOMAXPROCS to the host's CPU count, not the container's CPU quota: \
                 under a limit it runs more threads than it may use and is throttled, adding latency.",
                go.go_version
            ),
            path: Some(entry),
            layer: Some(cx.tree.entry(node).layer as usize),
            remediation: "Build with Go 1.25 or later (cgroup-aware), import _ \"go.uber.org/automaxprocs\", or set ENV \
                          GOMAXPROCS to the CPU limit."
                .into(),
        }]
    }
}
