//! How a sync reports what it is doing: a spinner per source on a terminal, plain lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// Receives progress events. `label` names the source (`elastic`, `botocore`).
pub trait Progress {
    /// Work on a source began.
    fn start(&self, label: &str, what: &str);
    /// Transient detail (git's `Receiving objects: 45%`, bytes downloaded); may be dropped.
    fn message(&self, label: &str, text: &str);
    /// The source is done: `ok` false means it failed and `text` says why.
    fn finish(&self, label: &str, ok: bool, text: &str);
}

/// Reports nothing (library use, tests).
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: &str) {}
    fn message(&self, _: &str, _: &str) {}
    fn finish(&self, _: &str, _: bool, _: &str) {}
}

/// Spinners on a terminal's stderr; one line per finished source when stderr is not a terminal
/// (CI logs), so long fetches still show they are alive without flooding the log.
pub struct Terminal {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Terminal {
    pub fn new() -> Terminal {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Terminal {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new()
    }
}

impl Progress for Terminal {
    fn start(&self, label: &str, what: &str) {
        match &self.multi {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(label.to_string());
                bar.set_message(what.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut bars) = self.bars.lock() {
                    bars.insert(label.to_string(), bar);
                }
            }
            None => eprintln!("sync {label}: {what}"),
        }
    }

    fn message(&self, label: &str, text: &str) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(bar) = bars.get(label) {
                bar.set_message(text.to_string());
            }
        }
    }

    fn finish(&self, label: &str, ok: bool, text: &str) {
        let mark = if ok { "ok" } else { "FAILED" };
        let bar = self.bars.lock().ok().and_then(|mut b| b.remove(label));
        match bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{prefix:.bold} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(format!("{mark}: {text}"));
            }
            None => eprintln!("sync {label}: {mark}: {text}"),
        }
    }
}
