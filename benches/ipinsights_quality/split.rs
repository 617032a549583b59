//! The pairs of the synthetic lake as the quickstart's feature run and scorer see them, computed
//! from the generator's records with `synthetic::pairs` (the SQL's selection without SQL).
//!
//! The feature run's split (the feature SQL of `pipeline::features`) is by time from the run's
//! reference time `now`: train is `[now - windowDays, now - validationDays)`, validation
//! `[now - validationDays, now)`. In the quickstart the run happens on the last day, after the
//! history is written and before the last day's records arrive; `now` is taken as the last
//! day's midnight, which puts whole days in each split. The last day is what the scorer sees.

use std::collections::HashMap;

use lakesight::ipinsights::Pair;
use lakesight::synthetic::calendar::DAY_MS;
use lakesight::synthetic::{Filter, Lake, Record, Selection, Window, anomaly, pairs};

/// One selection's pairs.
pub struct Split {
    /// Every selected row of the training window, as the `UNLOAD` writes them (no `DISTINCT`).
    pub train: Vec<Pair>,
    pub validation: Vec<Pair>,
    /// The last day's distinct pairs that its normal traffic forms (pairs only the planted
    /// anomalies form are left out).
    pub last_day_normal: Vec<Pair>,
    /// Each planted anomaly's distinct pairs: a detector finds the anomaly if it flags one.
    pub anomalies: Vec<Vec<Pair>>,
}

fn to_pairs(rows: Vec<(String, String)>) -> Vec<Pair> {
    rows.into_iter().map(|(entity, ip)| Pair::new(entity, ip.parse().expect("pairs() keeps dotted IPv4"))).collect()
}

fn distinct(mut rows: Vec<(String, String)>) -> Vec<(String, String)> {
    rows.sort();
    rows.dedup();
    rows
}

/// The records of every source in `[from, to)` days from the last day (0 is the last day).
fn records(lake: &Lake, from: i64, to: i64) -> Vec<Record> {
    let last = lake.spec.last_day;
    lake.spec.sources.iter().flat_map(|&s| lake.records_between(s, last.plus(from), last.plus(to))).collect()
}

/// The split of `selection`'s pairs for a feature run of `window_days` and `validation_days`.
pub fn split(lake: &Lake, selection: Selection, window_days: i64, validation_days: i64) -> Split {
    let now = lake.spec.last_day.start_ms();
    let (start, cut) = (now - window_days * DAY_MS, now - validation_days * DAY_MS);
    let history = records(lake, -window_days, 0);
    let window = |from, to| {
        to_pairs(pairs(&history, &Filter { window: Some(Window::Millis { from, to }), ..Filter::new(selection) }))
    };

    let planted: Vec<Vec<Record>> =
        lake.anomalies.iter().map(|a| anomaly::records(&lake.world, lake.spec.seed, a)).collect();
    // Row counts of the last day's pairs, less the rows the anomalies' records add.
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    for row in pairs(&records(lake, 0, 1), &Filter::new(selection)) {
        *counts.entry(row).or_default() += 1;
    }
    for row in planted.iter().flat_map(|r| pairs(r, &Filter::new(selection))) {
        *counts.entry(row).or_default() -= 1;
    }
    let normal = distinct(counts.into_iter().filter(|(_, n)| *n > 0).map(|(row, _)| row).collect());

    Split {
        train: window(start, cut),
        validation: window(cut, now),
        last_day_normal: to_pairs(normal),
        anomalies: planted.iter().map(|r| to_pairs(distinct(pairs(r, &Filter::new(selection))))).collect(),
    }
}
