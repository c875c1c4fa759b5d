//! `layers.wasted`: bytes a layer ships that a later layer overwrites or deletes. They are
//! still downloaded and stored with every pull, and a deleted file stays extractable from the
//! layer that added it.

use crate::{Check, Finding, ImageContext, Severity};

/// Above this share of the image's own layers, waste is a medium finding.
const MEDIUM_RATIO: f64 = 0.10;
/// Below this many bytes, waste is not worth a finding.
const NOTHING_TO_SAY: u64 = 1024 * 1024;

#[derive(Debug)]
pub struct Wasted;

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

impl Check for Wasted {
    fn id(&self) -> &'static str {
        "layers.wasted"
    }

    fn severity(&self) -> Severity {
        Severity::Low
    }

    fn summary(&self) -> &'static str {
        "Bytes shipped in a layer and overwritten or deleted by a later one (dive's wasted bytes)"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let Some(efficiency) = cx.efficiency else {
            return Vec::new();
        };
        if efficiency.wasted_bytes < NOTHING_TO_SAY {
            return Vec::new();
        }
        let severity = if efficiency.user_wasted_ratio > MEDIUM_RATIO {
            Severity::Medium
        } else {
            self.severity()
        };
        let examples: Vec<String> = efficiency
            .largest
            .iter()
            .take(3)
            .map(|i| {
                format!(
                    "{} ({} in {} layers)",
                    i.path,
                    human(i.wasted_bytes),
                    i.count
                )
            })
            .collect();
        vec![Finding {
            program: None,
            id: self.id().into(),
            severity,
            title: "Wasted bytes".into(),
            message: format!(
                "{} of the image are files that a later layer overwrites or deletes ({:.1} % of the layers above the base; \
                 image efficiency {:.1} %, as dive computes it). The largest: {}.",
                human(efficiency.wasted_bytes),
                efficiency.user_wasted_ratio * 100.0,
                efficiency.efficiency * 100.0,
                examples.join(", ")
            ),
            path: efficiency.largest.first().map(|i| i.path.clone()),
            layer: None,
            remediation: "Delete in the same RUN that creates (RUN apt-get update && apt-get install … && rm -rf \
                          /var/lib/apt/lists/*), or build in a separate stage and COPY --from only what the program needs."
                .into(),
        }]
    }
}
