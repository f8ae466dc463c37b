//! Progress shown to people: spinners for long work, a bar for downloads.

use std::io::IsTerminal;
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
        show_on_bar(&self.0, done, total, message);
    }
}

/// A bar counting items (genes, cells) with the time left, for work whose size is known;
/// hidden when stderr is not a terminal.
pub struct CountBar(pub ProgressBar);

impl CountBar {
    pub fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {elapsed}<{eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar)
    }
}

impl Progress for CountBar {
    fn report(&self, done: u64, total: Option<u64>, message: &str) {
        show_on_bar(&self.0, done, total, message);
    }
}

/// Shows a progress report on a bar: its position, length and message.
fn show_on_bar(bar: &ProgressBar, done: u64, total: Option<u64>, message: &str) {
    if let Some(total) = total {
        bar.set_length(total);
    }
    bar.set_position(done);
    bar.set_message(message.to_owned());
}

/// Shows a progress report on a spinner line: the message and, when the total is known, the
/// share done. Tools report this way (a first-use fetch, say) while the spinner runs.
pub fn show_on(bar: &ProgressBar, done: u64, total: Option<u64>, message: &str) {
    bar.set_message(match total {
        Some(total) if total > 0 => format!("{message} ({}%)", done.min(total) * 100 / total),
        _ => message.to_owned(),
    });
}

/// Tool progress on a spinner of its own, for calls made outside a run.
pub struct SpinnerProgress(pub ProgressBar);

impl Progress for SpinnerProgress {
    fn report(&self, done: u64, total: Option<u64>, message: &str) {
        show_on(&self.0, done, total, message);
    }
}

/// Runs `work` with its progress on a spinner while stderr is a terminal (reports go nowhere
/// otherwise), and clears the spinner when it ends.
pub fn with_spinner<T>(work: impl FnOnce(&dyn Progress) -> T) -> T {
    let bar = std::io::stderr().is_terminal().then(spinner);
    let result = match &bar {
        Some(bar) => work(&SpinnerProgress(bar.clone())),
        None => work(&cellwright_core::NoProgress),
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}
