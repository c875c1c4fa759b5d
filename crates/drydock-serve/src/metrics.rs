//! Counters for `/metrics`, written in Prometheus' text format by hand (a few counters and one
//! histogram do not need a crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::Counts;

/// Upper bounds of the scan duration histogram, in seconds.
const SCAN_BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// What the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    verdict_lookups: AtomicU64,
    verdict_misses: AtomicU64,
    /// Registry events by outcome (`enqueued`, `duplicate`, `ignored`, `deleted`, `invalid`).
    webhook_events: Mutex<BTreeMap<&'static str, u64>>,
    /// Failures by class (`usage`, `unavailable`, `invalid`, `store`, `internal`).
    errors: Mutex<BTreeMap<String, u64>>,
    /// Admission answers by outcome (`allowed`, `denied`).
    admissions: Mutex<BTreeMap<&'static str, u64>>,
    /// What the layer facts cache did, per layer (`hit`, `miss`, `ignored`, `stored`).
    facts_cache: Mutex<BTreeMap<&'static str, u64>>,
    scans: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; SCAN_BUCKETS.len()],
    count: u64,
    sum: f64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    if let Ok(mut map) = map.lock() {
        *map.entry(key).or_default() += 1;
    }
}

impl Metrics {
    pub fn lookup(&self, hit: bool) {
        self.verdict_lookups.fetch_add(1, Ordering::Relaxed);
        if !hit {
            self.verdict_misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn webhook_event(&self, outcome: &'static str) {
        bump(&self.webhook_events, outcome);
    }

    pub fn error(&self, class: &str) {
        bump(&self.errors, class.to_owned());
    }

    pub fn admission(&self, allowed: bool) {
        bump(&self.admissions, if allowed { "allowed" } else { "denied" });
    }

    pub fn facts_cache(&self, event: &'static str) {
        bump(&self.facts_cache, event);
    }

    pub fn scan_seconds(&self, seconds: f64) {
        if let Ok(mut histogram) = self.scans.lock() {
            for (bucket, bound) in histogram.buckets.iter_mut().zip(SCAN_BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        }
    }

    /// Everything in Prometheus' text exposition format, with the store's job counts.
    pub fn render(&self, jobs: Option<Counts>) -> String {
        let mut out = String::new();
        if let Some(jobs) = jobs {
            let _ = writeln!(
                out,
                "# HELP drydock_queue_depth Jobs waiting for a worker.\n\
                 # TYPE drydock_queue_depth gauge\ndrydock_queue_depth {}",
                jobs.queued
            );
            let _ = writeln!(
                out,
                "# HELP drydock_jobs Jobs in the store by state.\n# TYPE drydock_jobs gauge"
            );
            for (state, n) in [
                ("queued", jobs.queued),
                ("running", jobs.running),
                ("done", jobs.done),
                ("failed", jobs.failed),
            ] {
                let _ = writeln!(out, "drydock_jobs{{state=\"{state}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP drydock_scan_seconds How long scans took.\n# TYPE drydock_scan_seconds histogram"
        );
        if let Ok(histogram) = self.scans.lock() {
            for (n, bound) in histogram.buckets.iter().zip(SCAN_BUCKETS) {
                let _ = writeln!(out, "drydock_scan_seconds_bucket{{le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "drydock_scan_seconds_bucket{{le=\"+Inf\"}} {}\n\
                 drydock_scan_seconds_sum {}\ndrydock_scan_seconds_count {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP drydock_verdict_lookups_total Verdicts looked up (admission, API).\n\
             # TYPE drydock_verdict_lookups_total counter\ndrydock_verdict_lookups_total {}\n\
             # HELP drydock_verdict_misses_total Lookups that found no verdict.\n\
             # TYPE drydock_verdict_misses_total counter\ndrydock_verdict_misses_total {}",
            self.verdict_lookups.load(Ordering::Relaxed),
            self.verdict_misses.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP drydock_webhook_events_total Registry notification events by outcome.\n\
             # TYPE drydock_webhook_events_total counter"
        );
        if let Ok(map) = self.webhook_events.lock() {
            for (outcome, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "drydock_webhook_events_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP drydock_admission_reviews_total Admission answers by outcome.\n\
             # TYPE drydock_admission_reviews_total counter"
        );
        if let Ok(map) = self.admissions.lock() {
            for (outcome, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "drydock_admission_reviews_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP drydock_facts_cache_layers_total Layers by what the layer facts cache did \
             (hit: not read; miss and ignored: walked; stored: written; snapshot: in a copy of base \
             layers this replica applied before, not read).\n\
             # TYPE drydock_facts_cache_layers_total counter"
        );
        if let Ok(map) = self.facts_cache.lock() {
            for (event, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "drydock_facts_cache_layers_total{{event=\"{event}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP drydock_errors_total Failures by class.\n# TYPE drydock_errors_total counter"
        );
        if let Ok(map) = self.errors.lock() {
            for (class, n) in map.iter() {
                let _ = writeln!(out, "drydock_errors_total{{class=\"{class}\"}} {n}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_every_family() {
        let metrics = Metrics::default();
        metrics.scan_seconds(0.3);
        metrics.scan_seconds(7.0);
        metrics.lookup(true);
        metrics.lookup(false);
        metrics.webhook_event("enqueued");
        metrics.error("unavailable");
        metrics.facts_cache("hit");
        metrics.facts_cache("hit");
        let text = metrics.render(Some(Counts {
            queued: 2,
            ..Counts::default()
        }));
        for line in [
            "drydock_queue_depth 2",
            "drydock_jobs{state=\"queued\"} 2",
            "drydock_scan_seconds_bucket{le=\"0.25\"} 0",
            "drydock_scan_seconds_bucket{le=\"0.5\"} 1",
            "drydock_scan_seconds_bucket{le=\"10\"} 2",
            "drydock_scan_seconds_count 2",
            "drydock_verdict_lookups_total 2",
            "drydock_verdict_misses_total 1",
            "drydock_webhook_events_total{outcome=\"enqueued\"} 1",
            "drydock_errors_total{class=\"unavailable\"} 1",
            "drydock_facts_cache_layers_total{event=\"hit\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
