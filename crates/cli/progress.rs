//! The progress display on standard error: bytes read (downloaded or from disk), layers walked,
//! and the rate. Drawn only on a terminal, never with `--quiet` or logs.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use drydock_scan::ScanProgress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    layers: AtomicUsize,
    walked: AtomicUsize,
}

impl Progress {
    /// A display when `enabled`; otherwise every method does nothing.
    pub fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:.bold} {bytes} ({binary_bytes_per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message("reading the image");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            layers: AtomicUsize::new(0),
            walked: AtomicUsize::new(0),
        }
    }

    fn update_message(&self) {
        if let Some(bar) = &self.bar {
            let layers = self.layers.load(Ordering::Relaxed);
            let walked = self.walked.load(Ordering::Relaxed);
            bar.set_message(format!("layers {walked}/{layers}"));
        }
    }

    /// Clears the display before the report is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl ScanProgress for Progress {
    /// The layers are known: show a bar when their total size is.
    fn layers(&self, count: usize, total_bytes: Option<u64>) {
        let Some(bar) = &self.bar else { return };
        self.layers.store(count, Ordering::Relaxed);
        if let Some(total) = total_bytes.filter(|&t| t > 0) {
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:.bold} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
        }
        self.update_message();
    }

    /// A layer is walked.
    fn layer_done(&self) {
        self.walked.fetch_add(1, Ordering::Relaxed);
        self.update_message();
    }

    /// Counts the bytes read through `reader`.
    fn reader<'a>(&self, reader: Box<dyn Read + Send + 'a>) -> Box<dyn Read + Send + 'a> {
        match &self.bar {
            Some(bar) => Box::new(bar.wrap_read(reader)),
            None => reader,
        }
    }

    /// Analysis starts: the bytes are read.
    fn analysing(&self) {
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg:.bold}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message("checking");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
