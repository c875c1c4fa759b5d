use std::collections::BTreeMap;

use drydock_checks::{Finding, Severity};

/// A letter for the score: A from 90, B from 80, C from 70, D from 60, F below or with any
/// critical finding.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    fn from_score(score: u32) -> Self {
        match score {
            90.. => Self::A,
            80..=89 => Self::B,
            70..=79 => Self::C,
            60..=69 => Self::D,
            _ => Self::F,
        }
    }
}

/// Points one finding costs.
fn deduction(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 40,
        Severity::High => 15,
        Severity::Medium => 5,
        Severity::Low => 2,
        Severity::Info => 0,
    }
}

/// The highest score an image with a critical finding can have: it will not run, so it fails.
const CRITICAL_CAP: u32 = 49;

/// Scores findings: 100 minus each finding's deduction, each check costing at most three of its
/// most severe findings (one noisy check cannot drown the rest), and any critical finding caps
/// the score below a passing grade.
pub fn score(findings: &[Finding]) -> (u32, Grade) {
    let mut per_check: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for finding in findings {
        let entry = per_check.entry(&finding.id).or_insert((0, 0));
        entry.0 += deduction(finding.severity);
        entry.1 = entry.1.max(deduction(finding.severity));
    }
    let lost: u32 = per_check
        .values()
        .map(|(total, worst)| (*total).min(worst * 3))
        .sum();
    let mut score = 100u32.saturating_sub(lost);
    if findings.iter().any(|f| f.severity == Severity::Critical) {
        score = score.min(CRITICAL_CAP);
    }
    (score, Grade::from_score(score))
}

/// What each finding costs, in the order given: its deduction while its check's cap lasts.
pub fn costs(findings: &[Finding]) -> Vec<u32> {
    let mut worst: BTreeMap<&str, u32> = BTreeMap::new();
    for finding in findings {
        let entry = worst.entry(&finding.id).or_insert(0);
        *entry = (*entry).max(deduction(finding.severity));
    }
    let mut spent: BTreeMap<&str, u32> = BTreeMap::new();
    findings
        .iter()
        .map(|finding| {
            let cap = worst[finding.id.as_str()] * 3;
            let used = spent.entry(&finding.id).or_insert(0);
            let cost = deduction(finding.severity).min(cap - *used);
            *used += cost;
            cost
        })
        .collect()
}

/// When a scan fails: a finding at or above `fail_on` (default critical), or a score below
/// `min_score`.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// `None` never fails on findings.
    pub fail_on: Option<Severity>,
    pub min_score: Option<u32>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            fail_on: Some(Severity::Critical),
            min_score: None,
        }
    }
}

impl Gate {
    pub fn passes(&self, findings: &[Finding], score: u32) -> bool {
        let severity_ok = match self.fail_on {
            None => true,
            Some(threshold) => findings.iter().all(|f| f.severity > threshold),
        };
        severity_ok && self.min_score.is_none_or(|min| score >= min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding {
            program: None,
            id: id.into(),
            severity,
            title: String::new(),
            message: String::new(),
            path: None,
            layer: None,
            remediation: String::new(),
        }
    }

    #[test]
    fn a_clean_image_scores_100() {
        assert_eq!(score(&[]), (100, Grade::A));
    }

    #[test]
    fn any_critical_finding_fails_the_grade() {
        let (score, grade) = score(&[finding("elf.interpreter-missing", Severity::Critical)]);
        assert!(score <= CRITICAL_CAP);
        assert_eq!(grade, Grade::F);
    }

    #[test]
    fn costs_add_up_to_what_the_score_lost() {
        let mut findings: Vec<Finding> = (0..5).map(|_| finding("x.low", Severity::Low)).collect();
        findings.push(finding("y.high", Severity::High));
        let costs = costs(&findings);
        assert_eq!(costs, [2, 2, 2, 0, 0, 15]);
        assert_eq!(100 - costs.iter().sum::<u32>(), score(&findings).0);
    }

    #[test]
    fn a_minimum_score_gates_too() {
        let gate = Gate {
            fail_on: None,
            min_score: Some(90),
        };
        assert!(gate.passes(&[], 95));
        assert!(!gate.passes(&[], 80));
    }

    #[test]
    fn one_check_costs_at_most_three_findings() {
        let many: Vec<Finding> = (0..20).map(|_| finding("x.low", Severity::Low)).collect();
        assert_eq!(score(&many), (94, Grade::A));
    }

    #[test]
    fn the_gate_fails_at_or_above_its_threshold() {
        let findings = [finding("a", Severity::High)];
        let gate = |fail_on| Gate {
            fail_on,
            min_score: None,
        };
        assert!(!gate(Some(Severity::High)).passes(&findings, 100));
        assert!(!gate(Some(Severity::Medium)).passes(&findings, 100));
        assert!(gate(Some(Severity::Critical)).passes(&findings, 100));
        assert!(gate(None).passes(&findings, 100));
    }
}
