//! The policy file (`drydock.toml`): gate thresholds, severity overrides, disabled checks, and
//! ignores that each carry a reason and may expire.

use std::collections::{BTreeMap, BTreeSet};

use drydock_checks::{Finding, Severity};
use globset::{GlobBuilder, GlobMatcher};
use jiff::civil::Date;

/// A policy file that cannot be used, with the file and what is wrong in it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyFile {
    fail_on: Option<String>,
    min_score: Option<u32>,
    #[serde(default)]
    checks: BTreeMap<String, CheckSettings>,
    #[serde(default)]
    ignore: Vec<IgnoreEntry>,
    limits: Option<LimitSettings>,
}

/// `[limits]`: how much work an image may cost (the command line's flags win).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LimitSettings {
    max_layer_size: Option<String>,
    max_expansion: Option<u64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckSettings {
    severity: Option<Severity>,
    enabled: Option<bool>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreEntry {
    id: String,
    path: Option<String>,
    reason: String,
    expires: Option<toml::value::Datetime>,
}

/// One ignore rule: findings of `id` (at paths matching `path`, when given) do not count.
#[derive(Debug, Clone)]
pub struct Ignore {
    pub id: String,
    /// The glob as written; `*` stays within a path component, `**` crosses them.
    pub path: Option<String>,
    matcher: Option<GlobMatcher>,
    pub reason: String,
    /// The last day (UTC) the ignore applies.
    pub expires: Option<Date>,
}

impl Ignore {
    fn matches(&self, finding: &Finding) -> bool {
        finding.id == self.id
            && match (&self.matcher, &finding.path) {
                (None, _) => true,
                (Some(matcher), Some(path)) => matcher.is_match(path),
                (Some(_), None) => false,
            }
    }

    fn expired(&self, today: Date) -> bool {
        self.expires.is_some_and(|last| today > last)
    }

    /// How the report shows it.
    pub fn to_report(&self) -> crate::model::IgnoreReport {
        crate::model::IgnoreReport {
            id: self.id.clone(),
            path: self.path.clone(),
            reason: self.reason.clone(),
            expires: self.expires.map(|d| d.to_string()),
        }
    }
}

/// A parsed, validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The file it came from.
    pub file: String,
    /// `sha256:<hex>` of the file's bytes: what an attestation names the policy by.
    pub digest: String,
    /// `Some(None)`: the file says `fail-on = "none"`.
    pub fail_on: Option<Option<Severity>>,
    pub min_score: Option<u32>,
    pub severity_overrides: BTreeMap<String, Severity>,
    pub disabled: BTreeSet<String>,
    pub ignores: Vec<Ignore>,
    /// `[limits] max-layer-size`, in bytes.
    pub max_layer_size: Option<u64>,
    /// `[limits] max-expansion`, a ratio.
    pub max_expansion: Option<u64>,
}

/// Findings after the policy: those that count, those an ignore suppressed, and the ignores
/// that no longer apply or matched nothing.
#[derive(Debug, Default)]
pub struct Applied {
    pub findings: Vec<Finding>,
    pub suppressed: Vec<(Finding, Ignore)>,
    pub expired: Vec<Ignore>,
    pub unused: Vec<Ignore>,
}

impl Policy {
    /// Parses and validates a policy; `checks` is the catalogue (id, default severity), against
    /// which every id the file names is checked, so that a typo cannot silently ignore nothing.
    pub fn parse(text: &str, file: &str, checks: &[(&str, Severity)]) -> Result<Self, PolicyError> {
        let error = |message: String| PolicyError {
            file: file.to_owned(),
            message,
        };
        let parsed: PolicyFile =
            toml::from_str(text).map_err(|e| error(e.to_string().trim_end().to_owned()))?;
        let known = |id: &str, what: &str| {
            if checks.iter().any(|(known, _)| *known == id) {
                Ok(())
            } else {
                Err(error(format!(
                    "{what} names no check `{id}`; `drydock checks` lists them"
                )))
            }
        };
        let fail_on = match parsed.fail_on.as_deref() {
            None => None,
            Some("none") => Some(None),
            Some(other) => Some(Some(
                other
                    .parse::<Severity>()
                    .map_err(|e| error(format!("fail-on: {e}")))?,
            )),
        };
        if let Some(min) = parsed.min_score
            && min > 100
        {
            return Err(error(format!("min-score: {min} is not within 0-100")));
        }
        let mut policy = Policy {
            file: file.to_owned(),
            digest: drydock_layers::Sha256Digest::of(text.as_bytes()).to_string(),
            fail_on,
            min_score: parsed.min_score,
            ..Policy::default()
        };
        if let Some(limits) = parsed.limits {
            policy.max_layer_size = limits
                .max_layer_size
                .as_deref()
                .map(drydock_layers::parse_byte_size)
                .transpose()
                .map_err(|e| error(format!("[limits] max-layer-size: {e}")))?;
            if limits.max_expansion == Some(0) {
                return Err(error("[limits] max-expansion: must be at least 1".into()));
            }
            policy.max_expansion = limits.max_expansion;
        }
        for (id, settings) in parsed.checks {
            known(&id, "[checks]")?;
            if let Some(severity) = settings.severity {
                policy.severity_overrides.insert(id.clone(), severity);
            }
            if settings.enabled == Some(false) {
                policy.disabled.insert(id);
            }
        }
        for (n, entry) in parsed.ignore.into_iter().enumerate() {
            let which = format!("[[ignore]] #{}", n + 1);
            known(&entry.id, &which)?;
            if entry.reason.trim().is_empty() {
                return Err(error(format!(
                    "{which} ({}): `reason` must say why the finding is accepted",
                    entry.id
                )));
            }
            let matcher = entry
                .path
                .as_deref()
                .map(|glob| {
                    // Finding paths are absolute; `app/**` means `/app/**`.
                    let rooted = if glob.starts_with('/') || glob.starts_with("**") {
                        glob.to_owned()
                    } else {
                        format!("/{glob}")
                    };
                    GlobBuilder::new(&rooted)
                        .literal_separator(true)
                        .build()
                        .map(|g| g.compile_matcher())
                        .map_err(|e| error(format!("{which}: path: {e}")))
                })
                .transpose()?;
            let expires = entry
                .expires
                .map(|datetime| match (datetime.date, datetime.time) {
                    (Some(date), None) => Date::new(
                        i16::try_from(date.year).unwrap_or(i16::MAX),
                        i8::try_from(date.month).unwrap_or(0),
                        i8::try_from(date.day).unwrap_or(0),
                    )
                    .map_err(|e| error(format!("{which}: expires: {e}"))),
                    _ => Err(error(format!(
                        "{which}: expires must be a date such as 2027-01-31, not `{datetime}`"
                    ))),
                })
                .transpose()?;
            policy.ignores.push(Ignore {
                id: entry.id,
                path: entry.path,
                matcher,
                reason: entry.reason,
                expires,
            });
        }
        Ok(policy)
    }

    pub fn is_enabled(&self, id: &str) -> bool {
        !self.disabled.contains(id)
    }

    /// Applies severity overrides, then ignores that have not expired by `today`.
    ///
    /// An override sets the severity a check reports at by default; a finding the check had
    /// already lowered (a program no command reaches) stays as many levels below it.
    pub fn apply(
        &self,
        findings: Vec<Finding>,
        checks: &[(&str, Severity)],
        today: Date,
    ) -> Applied {
        let mut applied = Applied::default();
        let mut used = vec![false; self.ignores.len()];
        for mut finding in findings {
            if !self.is_enabled(&finding.id) {
                continue;
            }
            if let Some(&severity) = self.severity_overrides.get(&finding.id) {
                let default = checks
                    .iter()
                    .find(|(id, _)| *id == finding.id)
                    .map_or(finding.severity, |(_, sev)| *sev);
                let steps = (finding.severity as usize).saturating_sub(default as usize);
                finding.severity = (0..steps).fold(severity, |sev, _| sev.lowered());
            }
            let matching = self
                .ignores
                .iter()
                .enumerate()
                .filter(|(_, ignore)| ignore.matches(&finding))
                .map(|(i, _)| i)
                .collect::<Vec<_>>();
            for &i in &matching {
                used[i] = true;
            }
            match matching.iter().find(|&&i| !self.ignores[i].expired(today)) {
                Some(&i) => applied.suppressed.push((finding, self.ignores[i].clone())),
                None => applied.findings.push(finding),
            }
        }
        for (ignore, used) in self.ignores.iter().zip(used) {
            if ignore.expired(today) {
                applied.expired.push(ignore.clone());
            } else if !used {
                applied.unused.push(ignore.clone());
            }
        }
        applied
            .findings
            .sort_by(|a, b| (a.severity, &a.id, &a.path).cmp(&(b.severity, &b.id, &b.path)));
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKS: &[(&str, Severity)] = &[
        ("secret.file", Severity::High),
        ("elf.not-stripped", Severity::Low),
        ("user.root", Severity::Medium),
    ];

    #[test]
    fn the_digest_is_the_sha256_of_the_files_bytes() {
        let empty = Policy::parse("", "drydock.toml", CHECKS).unwrap();
        // sha256 of no bytes.
        assert_eq!(
            empty.digest,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let strict = Policy::parse("fail-on = \"high\"\n", "drydock.toml", CHECKS).unwrap();
        let also_strict = Policy::parse("fail-on = 'high'\n", "drydock.toml", CHECKS).unwrap();
        assert_ne!(strict.digest, empty.digest);
        assert_ne!(strict.digest, also_strict.digest, "bytes, not meaning");
    }

    fn finding(id: &str, severity: Severity, path: Option<&str>) -> Finding {
        Finding {
            id: id.into(),
            severity,
            title: String::new(),
            message: String::new(),
            path: path.map(Into::into),
            layer: None,
            program: None,
            remediation: String::new(),
        }
    }

    fn today() -> Date {
        Date::new(2026, 11, 26).expect("a date")
    }

    #[test]
    fn ignores_match_by_id_and_glob_until_they_expire() {
        let policy = Policy::parse(
            r#"
            [[ignore]]
            id = "secret.file"
            path = "app/testdata/**"
            reason = "test keys"
            expires = 2026-11-26

            [[ignore]]
            id = "secret.file"
            path = "/etc/*.key"
            reason = "old"
            expires = 2020-01-01
            "#,
            "drydock.toml",
            CHECKS,
        )
        .expect("valid");
        let applied = policy.apply(
            vec![
                finding("secret.file", Severity::High, Some("/app/testdata/a/k.pem")),
                finding("secret.file", Severity::High, Some("/app/real.pem")),
                finding("secret.file", Severity::High, Some("/etc/x.key")),
                finding("secret.file", Severity::High, Some("/etc/sub/x.key")),
            ],
            CHECKS,
            today(),
        );
        let paths =
            |fs: &[Finding]| -> Vec<String> { fs.iter().filter_map(|f| f.path.clone()).collect() };
        let suppressed: Vec<Finding> = applied.suppressed.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(paths(&suppressed), ["/app/testdata/a/k.pem"]);
        assert_eq!(
            paths(&applied.findings),
            ["/app/real.pem", "/etc/sub/x.key", "/etc/x.key"]
        );
        assert_eq!(applied.expired.len(), 1);
        assert_eq!(applied.expired[0].reason, "old");
        // The day after its last day, the first ignore is expired too.
        let tomorrow = today().tomorrow().expect("a date");
        let later = policy.apply(
            vec![finding(
                "secret.file",
                Severity::High,
                Some("/app/testdata/k"),
            )],
            CHECKS,
            tomorrow,
        );
        assert!(later.suppressed.is_empty());
        assert_eq!(later.expired.len(), 2);
    }

    #[test]
    fn overrides_keep_a_lowered_finding_below_the_new_level() {
        let policy = Policy::parse(
            "[checks.\"secret.file\"]\nseverity = \"critical\"\n[checks.\"user.root\"]\nenabled = false\n",
            "p.toml",
            CHECKS,
        )
        .expect("valid");
        let applied = policy.apply(
            vec![
                finding("secret.file", Severity::High, Some("/a")),
                finding("secret.file", Severity::Medium, Some("/b")),
                finding("user.root", Severity::Medium, None),
            ],
            CHECKS,
            today(),
        );
        let severities: Vec<Severity> = applied.findings.iter().map(|f| f.severity).collect();
        assert_eq!(severities, [Severity::Critical, Severity::High]);
    }

    #[test]
    fn mistakes_are_errors_that_name_the_file() {
        let cases = [
            (
                "[[ignore]]\nid = \"secret.file\"\nreason = \"\"\n",
                "reason",
            ),
            (
                "[[ignore]]\nid = \"secret.fil\"\nreason = \"x\"\n",
                "no check `secret.fil`",
            ),
            ("[[ignore]]\nid = \"secret.file\"\n", "reason"),
            ("fail-on = \"severe\"\n", "unknown severity"),
            ("min-score = 120\n", "min-score"),
            ("failon = \"high\"\n", "unknown field"),
            (
                "[[ignore]]\nid = \"secret.file\"\nreason = \"x\"\nexpires = 2027-01-01T10:00:00Z\n",
                "expires must be a date",
            ),
            (
                "[checks.\"secret.file\"]\nseverity = \"urgent\"\n",
                "unknown variant",
            ),
        ];
        for (text, expected) in cases {
            let error = Policy::parse(text, "drydock.toml", CHECKS).expect_err(text);
            let message = error.to_string();
            assert!(message.starts_with("drydock.toml: "), "{message}");
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn ignores_that_match_nothing_are_reported_as_unused() {
        let policy = Policy::parse(
            "[[ignore]]\nid = \"user.root\"\nreason = \"we run as root on purpose\"\n",
            "p.toml",
            CHECKS,
        )
        .expect("valid");
        let applied = policy.apply(Vec::new(), CHECKS, today());
        assert_eq!(applied.unused.len(), 1);
        let applied = policy.apply(
            vec![finding("user.root", Severity::Medium, None)],
            CHECKS,
            today(),
        );
        assert!(applied.unused.is_empty());
        assert_eq!(applied.suppressed.len(), 1);
    }
}
