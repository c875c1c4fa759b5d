//! Benchmarks are measurements, not tests: they write `docs/benchmarks.md`.

use std::path::Path;

pub fn memory(_root: &Path) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
