//! From a loaded image to the scored report: the checks, then the policy, score and gate.

use drydock_checks::{ImageContext, LayerInfo, RuntimeConfig};
use drydock_facts::secrets::redact;
use drydock_report::{Gate, ImageInfo, LayerReport, Policy, Report, ReportInput};
use drydock_source::Image;

use crate::error::ScanError;
use crate::load::{Scanned, load};
use crate::progress::ScanProgress;
use crate::request::ScanRequest;

/// Reads the image `request` names and reports on it: [`load`], then [`report`].
pub fn scan(
    request: &ScanRequest,
    gate: Gate,
    policy: Option<&Policy>,
    progress: &dyn ScanProgress,
) -> Result<Report, ScanError> {
    let scanned = load(request, progress)?;
    progress.analysing();
    Ok(report(&scanned, gate, policy))
}

/// The runtime view of the image config that checks use.
pub fn runtime_config(image: &Image) -> RuntimeConfig {
    let Some(config) = image.config.config() else {
        return RuntimeConfig::default();
    };
    RuntimeConfig {
        entrypoint: config.entrypoint().clone().unwrap_or_default(),
        cmd: config.cmd().clone().unwrap_or_default(),
        env: config.env().clone().unwrap_or_default(),
        user: config.user().clone().filter(|u| !u.is_empty()),
        working_dir: config.working_dir().clone().filter(|w| !w.is_empty()),
        history: image
            .config
            .history()
            .as_ref()
            .map(|h| h.iter().filter_map(|e| e.created_by().clone()).collect())
            .unwrap_or_default(),
    }
}

/// Runs the checks over a loaded image and builds the scored report.
pub fn report(scanned: &Scanned, gate: Gate, policy: Option<&Policy>) -> Report {
    let image = &scanned.image;
    let config = runtime_config(image);
    let platform = image.platform.to_string();
    let layer_infos: Vec<LayerInfo> = image
        .layers
        .iter()
        .map(|l| LayerInfo {
            index: l.index,
            digest: l.digest.clone(),
            created_by: l.created_by.as_deref().map(redact),
        })
        .collect();
    let cx = ImageContext::new(&scanned.tree, &config, &platform, &layer_infos)
        .with_efficiency(&scanned.efficiency)
        .with_secrets(&scanned.secrets);
    let enabled = |id: &str| policy.is_none_or(|p| p.is_enabled(id));
    let started = std::time::Instant::now();
    let findings = drydock_checks::run(&cx, &enabled);
    log::info!(
        "{} finding(s) before the policy, in {:.2?}",
        findings.len(),
        started.elapsed()
    );
    let stats = scanned.tree.layer_stats();
    let layers = scanned
        .layers
        .iter()
        .map(|walked| {
            let stat = stats.get(walked.layer.index).cloned().unwrap_or_default();
            LayerReport {
                index: walked.layer.index,
                digest: walked.layer.digest.clone(),
                diff_id: walked.layer.diff_id.clone(),
                size: walked.blob_size,
                uncompressed_size: walked.tar_size,
                added_bytes: stat.added_bytes,
                wasted_bytes: stat.wasted_bytes,
                created_by: walked.layer.created_by.as_deref().map(redact),
            }
        })
        .collect();
    let info = ImageInfo {
        source: scanned.source.clone(),
        reference: image.reference.clone(),
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        platform,
        layers,
        efficiency: scanned.efficiency.efficiency,
        wasted_bytes: scanned.efficiency.wasted_bytes,
        user_wasted_percent: scanned.efficiency.user_wasted_ratio * 100.0,
    };
    let catalogue = catalogue();
    Report::build(
        info,
        findings,
        image.notes.clone(),
        ReportInput {
            gate,
            policy,
            checks: &catalogue,
            scanned_at: jiff::Timestamp::now(),
        },
    )
}

/// Every check's id and default severity.
pub fn catalogue() -> Vec<(&'static str, drydock_checks::Severity)> {
    drydock_checks::all()
        .iter()
        .map(|c| (c.id(), c.severity()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorClass, NoProgress, SourceChoice};

    /// The committed sample: a glibc program in a musl image, which fails the default gate.
    fn sample() -> ScanRequest {
        ScanRequest::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/images/glibc-on-musl.tar.gz"
        ))
    }

    #[test]
    fn a_scan_needs_no_front_end() {
        let report = scan(&sample(), Gate::default(), None, &NoProgress).unwrap();
        assert!(!report.passed);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.finding.id == "elf.interpreter-missing")
        );
    }

    #[test]
    fn a_bad_reference_is_a_usage_error() {
        let request = ScanRequest {
            source: SourceChoice::Registry,
            ..ScanRequest::new("Not A Reference")
        };
        let error = load(&request, &NoProgress).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Usage);
        let request = ScanRequest::new("/no/such/image.tar");
        let error = load(&request, &NoProgress).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Unavailable);
    }
}
