//! The quality gate between training and deployment. A completed job is judged once, by the run
//! that trained it (or, after a run was killed, by the next run, as a planned action), against
//! `minAuc` and against the AUC of the newest generation that passed before it, with at most
//! `maxAucDrop` below it. The verdict is kept on the job as tags, so that every later run reads
//! the same decision: a rejected generation is never deployed, and the one before it keeps
//! serving.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tag_value;

/// `passed` or `rejected`.
pub const GATE_TAG: &str = "lakesight:gate";
/// The verdict's reason, in plain words.
pub const GATE_REASON_TAG: &str = "lakesight:gate-reason";

/// The gate's thresholds, from the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gate {
    pub min_auc: Option<f64>,
    pub max_auc_drop: Option<f64>,
}

/// The generation a candidate is compared with: the newest one that passed before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub job: String,
    pub auc: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub passed: bool,
    pub reason: String,
}

impl Verdict {
    /// The verdict a job carries, if it has been judged.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Verdict> {
        let passed = match tags.get(GATE_TAG)?.as_str() {
            "passed" => true,
            "rejected" => false,
            _ => return None,
        };
        Some(Verdict { passed, reason: tags.get(GATE_REASON_TAG).cloned().unwrap_or_default() })
    }

    /// The tags that keep this verdict on its job.
    pub fn tags(&self) -> [(&'static str, String); 2] {
        let word = if self.passed { "passed" } else { "rejected" };
        [(GATE_TAG, word.to_owned()), (GATE_REASON_TAG, tag_value(&self.reason))]
    }
}

impl Gate {
    /// Judges a job that reported `auc` (None: no metric), against `baseline`.
    /// A metric that is not a finite number counts as none.
    pub fn judge(&self, auc: Option<f64>, baseline: Option<&Baseline>) -> Verdict {
        let rejected = |reason: String| Verdict { passed: false, reason };
        let auc = auc.filter(|a| a.is_finite());
        let before = baseline.and_then(|b| b.auc.filter(|a| a.is_finite()).map(|a| (b, a)));
        let drop_check = self.max_auc_drop.zip(before);
        let Some(auc) = auc else {
            if self.min_auc.is_some() || drop_check.is_some() {
                return rejected("no validation AUC was reported, and the gate needs it".into());
            }
            return Verdict { passed: true, reason: "no gate is set".into() };
        };
        let mut passed = vec![format!("AUC {auc:.4}")];
        if let Some(min) = self.min_auc {
            if auc < min {
                return rejected(format!("AUC {auc:.4} is below minAuc {min}"));
            }
            passed.push(format!("at least minAuc {min}"));
        }
        if let Some((max_drop, (baseline, before))) = drop_check {
            let drop = before - auc;
            if drop > max_drop {
                return rejected(format!(
                    "AUC {auc:.4} is {drop:.4} below {}'s {before:.4}, more than maxAucDrop {max_drop}",
                    baseline.job
                ));
            }
            passed.push(format!("{:+.4} against {}'s {before:.4} (maxAucDrop {max_drop})", -drop, baseline.job));
        }
        Verdict { passed: true, reason: passed.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(auc: f64) -> Baseline {
        Baseline { job: "lakesight-demo-g3-0a1b2c3d".into(), auc: Some(auc) }
    }

    #[test]
    fn the_minimum_and_the_drop_are_both_enforced() {
        let gate = Gate { min_auc: Some(0.8), max_auc_drop: Some(0.02) };
        let low = gate.judge(Some(0.75), None);
        assert!(!low.passed && low.reason.contains("below minAuc 0.8"), "{low:?}");
        let worse = gate.judge(Some(0.85), Some(&baseline(0.9)));
        assert!(
            !worse.passed && worse.reason.contains("0.0500 below lakesight-demo-g3-0a1b2c3d's 0.9000"),
            "{worse:?}"
        );
        let slightly = gate.judge(Some(0.89), Some(&baseline(0.9)));
        assert!(slightly.passed && slightly.reason.contains("-0.0100 against"), "{slightly:?}");
        let better = gate.judge(Some(0.95), Some(&baseline(0.9)));
        assert!(better.passed && better.reason.contains("+0.0500"), "{better:?}");
        assert!(gate.judge(Some(0.81), None).passed, "the first generation has only the minimum to meet");
    }

    #[test]
    fn a_missing_metric_passes_only_when_no_gate_needs_it() {
        assert!(Gate::default().judge(None, Some(&baseline(0.9))).passed);
        assert!(!Gate { min_auc: Some(0.5), max_auc_drop: None }.judge(None, None).passed);
        assert!(!Gate { min_auc: None, max_auc_drop: Some(0.1) }.judge(None, Some(&baseline(0.9))).passed);
        assert!(Gate { min_auc: None, max_auc_drop: Some(0.1) }.judge(None, None).passed);
        let nan = Gate { min_auc: Some(0.5), max_auc_drop: None }.judge(Some(f64::NAN), None);
        assert!(!nan.passed && nan.reason.contains("no validation AUC"), "{nan:?}");
    }

    #[test]
    fn a_verdict_survives_its_tags() {
        let verdict = Gate { min_auc: Some(0.8), max_auc_drop: None }.judge(Some(0.5), None);
        let tags: BTreeMap<String, String> = verdict.tags().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(Verdict::from_tags(&tags), Some(verdict));
        assert_eq!(Verdict::from_tags(&BTreeMap::new()), None);
    }
}
