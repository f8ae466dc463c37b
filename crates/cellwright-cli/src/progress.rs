//! Progress shown to people: spinners for long work, a bar for downloads.

use std::time::Duration;

use cellwright_core::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// A spinner with the elapsed time and a message.
pub fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A download bar for the package client's fetches.
pub struct FetchBar(pub ProgressBar);

impl FetchBar {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar)
    }
}

impl Progress for FetchBar {
    fn report(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(total) = total {
            self.0.set_length(total);
        }
        self.0.set_position(done);
        self.0.set_message(message.to_owned());
    }
}
