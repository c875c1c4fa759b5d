//! How much decompression one image may cost: a decompression bomb costs time, never memory,
//! so it is cut off by the ratio of what it expands to over what was read.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The bytes every stream of one scan may expand to: an allowance every image gets, plus
/// `ratio` times the compressed bytes read so far. Shared by the layers of an image (walked in
/// parallel), so that the total work of a scan stays within a multiple of its input, however
/// many layers it has.
#[derive(Debug)]
pub struct ExpansionBudget {
    ratio: u64,
    allowance: u64,
    compressed: AtomicU64,
    expanded: AtomicU64,
}

/// The error a stream returns when the budget is spent, recognisable in an `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error(
    "it expands to more than {ratio} times its compressed size (past the first {allowance} bytes)"
)]
pub struct ExpansionExceeded {
    pub ratio: u64,
    pub allowance: u64,
}

impl ExpansionBudget {
    pub fn new(ratio: u64, allowance: u64) -> Self {
        Self {
            ratio,
            allowance,
            compressed: AtomicU64::new(0),
            expanded: AtomicU64::new(0),
        }
    }

    /// Bytes expanded so far by every stream of the scan.
    pub fn expanded(&self) -> u64 {
        self.expanded.load(Ordering::Relaxed)
    }

    fn read_compressed(&self, n: usize) {
        self.compressed.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn read_expanded(&self, n: usize) -> io::Result<()> {
        let expanded = self.expanded.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed);
        let allowed = self
            .allowance
            .saturating_add(self.ratio.saturating_mul(compressed));
        if expanded > allowed {
            return Err(io::Error::other(ExpansionExceeded {
                ratio: self.ratio,
                allowance: self.allowance,
            }));
        }
        Ok(())
    }

    /// The budget error inside `error`, if that is what it is.
    pub fn exceeded(error: &io::Error) -> Option<&ExpansionExceeded> {
        error.get_ref()?.downcast_ref::<ExpansionExceeded>()
    }
}

/// Counts the compressed side of a stream into a budget.
#[derive(Debug)]
pub struct CompressedSide<R> {
    inner: R,
    budget: Arc<ExpansionBudget>,
}

impl<R: Read> CompressedSide<R> {
    pub fn new(inner: R, budget: Arc<ExpansionBudget>) -> Self {
        Self { inner, budget }
    }
}

impl<R: Read> Read for CompressedSide<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.read_compressed(n);
        Ok(n)
    }
}

/// Counts the expanded side of a stream into a budget, failing once it is spent.
#[derive(Debug)]
pub struct ExpandedSide<R> {
    inner: R,
    budget: Arc<ExpansionBudget>,
}

impl<R: Read> ExpandedSide<R> {
    pub fn new(inner: R, budget: Arc<ExpansionBudget>) -> Self {
        Self { inner, budget }
    }
}

impl<R: Read> Read for ExpandedSide<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.read_expanded(n)?;
        Ok(n)
    }
}

/// A size as people write it: `500000`, `64GiB`, `512MiB`, `2G`, `10MB` (powers of 1024 and
/// 1000 as written; a bare `K`/`M`/`G`/`T` is 1024-based, as in docker's flags).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 64GiB, 512MB, 1000000)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "`{other}` is not a size unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_people_write_them() {
        assert_eq!(parse_byte_size("64GiB"), Ok(64 << 30));
        assert_eq!(parse_byte_size("2G"), Ok(2 << 30));
        assert_eq!(parse_byte_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("5 parsecs").is_err());
        assert!(parse_byte_size("99999999999TiB").is_err());
    }

    #[test]
    fn the_budget_grows_with_what_was_read() {
        let budget = ExpansionBudget::new(10, 100);
        assert!(budget.read_expanded(100).is_ok(), "the allowance");
        let error = budget.read_expanded(1).unwrap_err();
        assert!(ExpansionBudget::exceeded(&error).is_some(), "{error}");
        budget.read_compressed(10);
        assert!(budget.read_expanded(99).is_ok(), "100 + 10 x 10");
        assert!(budget.read_expanded(1).is_err());
    }
}
