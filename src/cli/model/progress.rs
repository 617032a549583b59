//! Training progress on stderr: a bar on a terminal, one JSON line per epoch for programs (a
//! local SageMaker follows a job's progress with it), or nothing.

use std::io::IsTerminal;
use std::time::Duration;

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::ipinsights::{BatchProgress, EpochMetrics, Progress};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Bar,
    Json,
    None,
}

impl ProgressMode {
    /// A bar when stderr is a terminal, else nothing: logs should not fill with redraws.
    pub fn or_default(mode: Option<Self>) -> Self {
        mode.unwrap_or(if std::io::stderr().is_terminal() { Self::Bar } else { Self::None })
    }
}

/// What `--progress json` writes after each epoch.
#[derive(Serialize)]
struct EpochLine {
    epoch: usize,
    epochs: usize,
    samples_per_second: f64,
    train_loss: f64,
    train_accuracy: f64,
}

pub enum Reporter {
    Bar { bar: ProgressBar, epochs: usize },
    Json { epochs: usize },
    None,
}

impl Reporter {
    pub fn new(mode: ProgressMode, epochs: usize) -> Self {
        match mode {
            ProgressMode::Bar => {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} epoch {prefix} · {msg} · ETA {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.enable_steady_tick(Duration::from_millis(250));
                Self::Bar { bar, epochs }
            }
            ProgressMode::Json => Self::Json { epochs },
            ProgressMode::None => Self::None,
        }
    }

    pub fn finish(&self) {
        if let Self::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn on_batch(&mut self, p: &BatchProgress) {
        if let Self::Bar { bar, epochs } = self {
            // The bar spans every epoch, so its ETA is the run's.
            bar.set_length((p.samples_in_epoch * *epochs) as u64);
            bar.set_position((p.samples_in_epoch * (p.epoch - 1) + p.samples_done) as u64);
            bar.set_prefix(format!("{}/{epochs}", p.epoch));
            bar.set_message(format!(
                "{:.0} samples/s · loss {:.4} · accuracy {:.3}",
                p.samples_per_second, p.running_loss, p.running_accuracy
            ));
        }
    }

    fn on_epoch(&mut self, m: &EpochMetrics) {
        match self {
            Self::Json { epochs } => {
                let line = EpochLine {
                    epoch: m.epoch,
                    epochs: *epochs,
                    samples_per_second: m.samples_per_second,
                    train_loss: m.loss,
                    train_accuracy: m.accuracy,
                };
                if let Ok(json) = serde_json::to_string(&line) {
                    eprintln!("{json}");
                }
            }
            Self::Bar { bar, epochs } => bar.println(format!(
                "epoch {}/{epochs}: loss {:.4}, accuracy {:.4}, {:.0} samples/s",
                m.epoch, m.loss, m.accuracy, m.samples_per_second
            )),
            Self::None => {}
        }
    }
}
