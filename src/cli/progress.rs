//! Live progress for apply and destroy: spinners with elapsed time and the AWS status on a
//! terminal, plain periodic lines elsewhere (CI logs, cron mail).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::engine::{Action, Outcome, Reporter};

/// How often a plain-text waiting line repeats for the same resource.
const PLAIN_INTERVAL: Duration = Duration::from_secs(30);

pub struct Progress {
    mode: Mode,
}

enum Mode {
    Quiet,
    Terminal { bars: MultiProgress, active: Mutex<HashMap<String, (ProgressBar, Instant)>> },
    Plain { last_line: Mutex<HashMap<String, Instant>> },
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::NoOp => "checking",
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "deleting",
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Unchanged => "unchanged".into(),
        Outcome::Applied(a) => format!("{} done", verb(*a)),
        Outcome::Failed(e) => format!("FAILED: {e}"),
        Outcome::Skipped { blocked_by } => format!("skipped (waits on {blocked_by})"),
        Outcome::Interrupted => "interrupted".into(),
        Outcome::Waiting(reason) => reason.clone(),
        Outcome::Deferred { waits_on } => format!("waits on {waits_on}"),
    }
}

fn spinner(bars: &MultiProgress) -> ProgressBar {
    let bar = bars.add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal { bars: MultiProgress::new(), active: Mutex::new(HashMap::new()) }
        } else {
            Mode::Plain { last_line: Mutex::new(HashMap::new()) }
        };
        Progress { mode }
    }

    /// Removes any spinner still drawn, before the final report is printed.
    pub fn clear(&self) {
        if let Mode::Terminal { bars, .. } = &self.mode {
            let _ = bars.clear();
        }
    }
}

impl Reporter for Progress {
    fn started(&self, address: &str, action: Action) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Terminal { bars, active } => {
                let bar = spinner(bars);
                bar.set_message(format!("{address}: {}", verb(action)));
                if let Ok(mut a) = active.lock() {
                    a.insert(address.to_owned(), (bar, Instant::now()));
                }
            }
            Mode::Plain { .. } => eprintln!("{address}: {}", verb(action)),
        }
    }

    fn waiting(&self, address: &str, status: &str, elapsed: Duration) {
        let elapsed = humantime::format_duration(Duration::from_secs(elapsed.as_secs()));
        match &self.mode {
            Mode::Quiet => {}
            Mode::Terminal { bars, active } => {
                if let Ok(mut a) = active.lock() {
                    let (bar, _) = a.entry(address.to_owned()).or_insert_with(|| (spinner(bars), Instant::now()));
                    bar.set_message(format!("{address}: {status} ({elapsed})"));
                }
            }
            Mode::Plain { last_line } => {
                let due = last_line.lock().map(|mut l| {
                    let now = Instant::now();
                    let due = l.get(address).is_none_or(|t| now.duration_since(*t) >= PLAIN_INTERVAL);
                    if due {
                        l.insert(address.to_owned(), now);
                    }
                    due
                });
                if due.unwrap_or(true) {
                    eprintln!("{address}: {status} after {elapsed}");
                }
            }
        }
    }

    fn finished(&self, address: &str, outcome: &Outcome) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Terminal { bars, active } => {
                let entry = active.lock().ok().and_then(|mut a| a.remove(address));
                match entry {
                    Some((bar, started)) => {
                        bar.finish_and_clear();
                        let _ = bars.println(format!(
                            "{address}: {} in {:.1}s",
                            describe(outcome),
                            started.elapsed().as_secs_f64()
                        ));
                    }
                    None if *outcome != Outcome::Unchanged => {
                        let _ = bars.println(format!("{address}: {}", describe(outcome)));
                    }
                    None => {}
                }
            }
            Mode::Plain { .. } if *outcome == Outcome::Unchanged => {}
            Mode::Plain { .. } => eprintln!("{address}: {}", describe(outcome)),
        }
    }
}
