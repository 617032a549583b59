//! The concurrent walk: every node whose prerequisites have finished runs, at most `parallelism`
//! at a time. A failure skips everything downstream of it and lets independent branches finish.
//! Waiting for readiness gives the worker slot back between polls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::graph::{Direction, Graph};
use super::node::{Node, Ownership, Readiness};
use super::plan::{Action, Plan, Rules, observe_and_publish};
use super::value::Values;

/// How one node ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "result", content = "detail")]
pub enum Outcome {
    Unchanged,
    Applied(Action),
    Failed(String),
    /// Not attempted because a prerequisite failed.
    Skipped {
        blocked_by: String,
    },
    /// Not attempted, or abandoned while waiting, because the run was cancelled.
    Interrupted,
    /// Cannot go on until something outside the stack changes (data arriving, say). The run
    /// still succeeds; a later run tries again.
    Waiting(String),
    /// Not attempted because a prerequisite is waiting.
    Deferred {
        waits_on: String,
    },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Unchanged | Outcome::Applied(_) | Outcome::Waiting(_) | Outcome::Deferred { .. })
    }

    /// Finished, and what it finished is there for its dependents.
    fn unblocks(&self) -> bool {
        matches!(self, Outcome::Unchanged | Outcome::Applied(_))
    }
}

/// Progress callbacks; the CLI turns them into spinners or plain lines.
pub trait Reporter: Send + Sync {
    fn started(&self, _address: &str, _action: Action) {}
    fn waiting(&self, _address: &str, _status: &str, _elapsed: Duration) {}
    fn finished(&self, _address: &str, _outcome: &Outcome) {}
}

/// A reporter that reports nothing.
pub struct Silent;
impl Reporter for Silent {}

pub struct ExecOptions {
    pub parallelism: usize,
    pub cancel: CancellationToken,
}

/// A node that did something other than its approved action, because a change upstream in the
/// same run called for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replanned {
    pub address: String,
    pub approved: Action,
    pub applied: Action,
    pub reason: String,
}

/// Every node's outcome, in walk order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub outcomes: Vec<(String, Outcome)>,
    /// Actions that followed from an approved change upstream.
    pub replanned: Vec<Replanned>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.outcomes.iter().all(|(_, o)| o.is_success())
    }

    pub fn interrupted(&self) -> bool {
        self.outcomes.iter().any(|(_, o)| *o == Outcome::Interrupted)
    }

    pub fn outcome(&self, address: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|(a, _)| a == address).map(|(_, o)| o)
    }

    /// Why the run stopped short of the end without failing, if a node is waiting.
    pub fn waiting(&self) -> Vec<(&str, &str)> {
        self.outcomes
            .iter()
            .filter_map(|(a, o)| match o {
                Outcome::Waiting(reason) => Some((a.as_str(), reason.as_str())),
                _ => None,
            })
            .collect()
    }
}

/// Shared by every node task of one walk.
struct Walk {
    slots: Arc<Semaphore>,
    serial: HashMap<String, Arc<Mutex<()>>>,
    cancel: CancellationToken,
    reporter: Arc<dyn Reporter>,
    direction: Direction,
    rules: Rules,
    values: Arc<Values>,
}

/// What the user approved for one node.
#[derive(Debug, Clone)]
struct Approved {
    action: Action,
    /// The fields an approved update changes.
    fields: Vec<String>,
}

/// What one node's task ends with.
struct Finished {
    outcome: Outcome,
    replanned: Option<Replanned>,
}

/// Walks the graph in `direction`, acting on each node once its prerequisites have settled.
/// A node is observed and planned again just before it acts, so it acts on the present: a change
/// that follows from an approved change upstream is carried out and reported; anything else
/// that differs from the approved plan stops that node.
pub async fn execute(
    graph: &Graph,
    plan: &Plan,
    direction: Direction,
    options: &ExecOptions,
    reporter: Arc<dyn Reporter>,
) -> Report {
    let n = graph.len();
    let approved: Vec<Approved> = (0..n)
        .map(|i| match plan.node(graph.node(i).address()) {
            Some(planned) => {
                Approved { action: planned.action, fields: planned.changes.iter().map(|c| c.field.clone()).collect() }
            }
            None => Approved { action: Action::NoOp, fields: Vec::new() },
        })
        .collect();
    let walk = Arc::new(Walk {
        slots: Arc::new(Semaphore::new(options.parallelism.max(1))),
        serial: (0..n)
            .filter_map(|i| graph.node(i).serial_key().map(str::to_owned))
            .map(|key| (key, Arc::new(Mutex::new(()))))
            .collect(),
        cancel: options.cancel.clone(),
        reporter,
        direction,
        rules: plan.rules.clone(),
        values: Arc::clone(graph.values()),
    });

    let mut waiting_for: Vec<usize> = (0..n).map(|i| graph.prerequisites(i, direction).len()).collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    // Whether a node changed in this run, so that what waits on it directly plans again.
    let mut changed = vec![false; n];
    let mut replanned = Vec::new();
    let mut tasks = JoinSet::new();
    // Which node each task runs, so that a panicking task fails its own node only.
    let mut task_nodes = HashMap::new();
    let spawn = |tasks: &mut JoinSet<(usize, Finished)>,
                 task_nodes: &mut HashMap<tokio::task::Id, usize>,
                 changed: &[bool],
                 i: usize| {
        let node = Arc::clone(graph.node(i));
        let walk = Arc::clone(&walk);
        let approved = approved[i].clone();
        let upstream_changed = graph.prerequisites(i, direction).iter().any(|&p| changed[p]);
        let handle = tasks.spawn(async move { (i, run_node(node.as_ref(), &approved, upstream_changed, &walk).await) });
        task_nodes.insert(handle.id(), i);
    };
    for i in graph.order(direction) {
        if waiting_for[i] == 0 {
            spawn(&mut tasks, &mut task_nodes, &changed, i);
        }
    }

    while let Some(joined) = tasks.join_next().await {
        let (i, finished) = match joined {
            Ok(done) => done,
            Err(e) => match task_nodes.get(&e.id()) {
                Some(&i) => (
                    i,
                    Finished {
                        outcome: Outcome::Failed(format!("lakesight bug: the task panicked: {e}")),
                        replanned: None,
                    },
                ),
                None => continue,
            },
        };
        let Finished { outcome, replanned: note } = finished;
        replanned.extend(note);
        walk.reporter.finished(graph.node(i).address(), &outcome);
        // A change carried out, or approved and found done meanwhile: either way its outputs may
        // differ from what the plan saw.
        changed[i] =
            matches!(outcome, Outcome::Applied(_)) || (approved[i].action.is_change() && outcome == Outcome::Unchanged);
        if outcome.unblocks() {
            for &j in graph.waiting_on(i, direction) {
                waiting_for[j] -= 1;
                if waiting_for[j] == 0 && outcomes[j].is_none() {
                    spawn(&mut tasks, &mut task_nodes, &changed, j);
                }
            }
        } else {
            // Work held up by an interruption is interrupted too, not blamed on a failure.
            let address = graph.node(i).address().to_owned();
            let downstream = match outcome {
                Outcome::Interrupted => Outcome::Interrupted,
                Outcome::Waiting(_) | Outcome::Deferred { .. } => Outcome::Deferred { waits_on: address },
                _ => Outcome::Skipped { blocked_by: address },
            };
            mark_downstream(graph, direction, i, &downstream, &mut outcomes, &*walk.reporter);
        }
        outcomes[i] = Some(outcome);
    }

    // What the manifest no longer declares and the plan left out (it is gone, or not the
    // stack's) did nothing worth reporting.
    let reported = |&i: &usize| graph.node(i).declared() || plan.node(graph.node(i).address()).is_some();
    Report {
        outcomes: graph
            .order(direction)
            .into_iter()
            .filter(reported)
            .map(|i| (graph.node(i).address().to_owned(), outcomes[i].clone().unwrap_or(Outcome::Interrupted)))
            .collect(),
        replanned,
    }
}

/// Gives everything that transitively waits on `origin` the same outcome, naming the root cause once.
fn mark_downstream(
    graph: &Graph,
    direction: Direction,
    origin: usize,
    outcome: &Outcome,
    outcomes: &mut [Option<Outcome>],
    reporter: &dyn Reporter,
) {
    let mut stack: Vec<usize> = graph.waiting_on(origin, direction).to_vec();
    while let Some(j) = stack.pop() {
        if outcomes[j].is_none() {
            reporter.finished(graph.node(j).address(), outcome);
            outcomes[j] = Some(outcome.clone());
            stack.extend_from_slice(graph.waiting_on(j, direction));
        }
    }
}

/// Observes and plans `node` again, just before it acts, and decides what it does now.
async fn replan(
    node: &dyn Node,
    approved: &Approved,
    upstream_changed: bool,
    walk: &Walk,
) -> Result<(Action, Option<Replanned>), Outcome> {
    let observed = {
        let Ok(_slot) = walk.slots.acquire().await else { return Err(Outcome::Interrupted) };
        observe_and_publish(node, &walk.values).await.map_err(Outcome::Failed)?
    };
    let fresh = walk.rules.decide(node, &observed).map_err(|refusal| Outcome::Failed(refusal.to_string()))?;
    let fields: Vec<String> = fresh.changes.iter().map(|c| c.field.clone()).collect();
    let approved_fields = approved.fields.clone();
    let approved = approved.action;
    let applied = match fresh.action {
        now if now == approved && (fields == approved_fields || upstream_changed) => approved,
        // Done meanwhile, by an earlier node of this run or by someone else: nothing left to do.
        Action::NoOp => Action::NoOp,
        now if upstream_changed => now,
        now => {
            return Err(Outcome::Failed(format!(
                "the approved plan said {approved:?} ({}), but it now needs {now:?} ({}: {}), and nothing this \
                 run changed explains it; run plan again and review",
                approved_fields.join(", "),
                fresh.reason,
                fields.join(", ")
            )));
        }
    };
    let replanned = (applied != approved && applied.is_change()).then(|| Replanned {
        address: node.address().to_owned(),
        approved,
        applied,
        reason: format!("{}; follows from a change upstream in this run", fresh.reason),
    });
    Ok((applied, replanned))
}

async fn run_node(node: &dyn Node, approved: &Approved, upstream_changed: bool, walk: &Walk) -> Finished {
    if walk.cancel.is_cancelled() {
        return Finished { outcome: Outcome::Interrupted, replanned: None };
    }
    let (action, replanned) = if approved.action.is_change() || upstream_changed {
        match replan(node, approved, upstream_changed, walk).await {
            Ok(decided) => decided,
            Err(outcome) => return Finished { outcome, replanned: None },
        }
    } else {
        (approved.action, None)
    };
    Finished { outcome: act(node, action, walk).await, replanned }
}

async fn act(node: &dyn Node, action: Action, walk: &Walk) -> Outcome {
    if action.is_change() {
        // The serial lock first: a node waiting for it holds no worker slot.
        let _serial = match node.serial_key().and_then(|k| walk.serial.get(k)) {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let Ok(_slot) = walk.slots.acquire().await else {
            return Outcome::Interrupted;
        };
        if walk.cancel.is_cancelled() {
            return Outcome::Interrupted;
        }
        walk.reporter.started(node.address(), action);
        if let Err(e) = node.apply(action).await {
            return Outcome::Failed(e.to_string());
        }
    }
    // After a change, or on the way up (a resumed apply may find a resource still settling).
    // What the manifest no longer declares has nothing to settle unless it was just removed.
    if (action.is_change() || (walk.direction == Direction::Forward && node.declared()))
        && let Err(outcome) = await_ready(node, walk).await
    {
        return outcome;
    }
    if !action.is_change() {
        return Outcome::Unchanged;
    }
    // What dependents read is what the change produced.
    let published = match action {
        Action::Delete => {
            walk.values.publish(node.address(), None);
            Ok(())
        }
        _ => {
            let Ok(_slot) = walk.slots.acquire().await else { return Outcome::Interrupted };
            observe_and_publish(node, &walk.values).await.and_then(|o| match o.ownership {
                Some(Ownership::Owned | Ownership::Untaggable) => Ok(()),
                _ => Err("it does not read back as the stack's".to_owned()),
            })
        }
    };
    match published {
        Ok(()) => Outcome::Applied(action),
        Err(e) => Outcome::Failed(format!("applied, but {e}")),
    }
}

async fn await_ready(node: &dyn Node, walk: &Walk) -> Result<(), Outcome> {
    let started = Instant::now();
    let deadline = started + node.wait_timeout();
    for poll in 0u32.. {
        let readiness = {
            let Ok(_slot) = walk.slots.acquire().await else {
                return Err(Outcome::Interrupted);
            };
            node.readiness().await
        };
        match readiness {
            Ok(Readiness::Ready) => return Ok(()),
            Ok(Readiness::Waiting { reason }) => return Err(Outcome::Waiting(reason)),
            Err(e) => return Err(Outcome::Failed(e.to_string())),
            Ok(Readiness::Pending { status, retry_after }) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Outcome::Failed(format!(
                        "still {status} after {}; raise spec.timeouts to wait longer",
                        humantime::format_duration(node.wait_timeout())
                    )));
                }
                walk.reporter.waiting(node.address(), &status, started.elapsed());
                let delay = poll_delay(retry_after, poll, fastrand::f64());
                tokio::select! {
                    _ = tokio::time::sleep(delay.min(deadline - now)) => {}
                    _ = walk.cancel.cancelled() => {
                        if let Err(e) = node.abandon().await {
                            tracing::warn!("{}: could not stop its work in progress: {e}", node.address());
                        }
                        return Err(Outcome::Interrupted);
                    }
                }
            }
        }
    }
    Err(Outcome::Failed("polled more often than a u32 counts".into()))
}

/// Backoff between readiness polls: the resource's interval, doubled per poll up to eight times
/// it, with ±20% jitter (`unit` in [0, 1)) so that many waiting resources do not poll in step.
fn poll_delay(base: Duration, poll: u32, unit: f64) -> Duration {
    base.mul_f64(f64::from(1u32 << poll.min(3)) * (0.8 + 0.4 * unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_delay_backs_off_to_eight_times_with_jitter() {
        let base = Duration::from_secs(1);
        assert_eq!(poll_delay(base, 0, 0.5), Duration::from_secs(1));
        assert_eq!(poll_delay(base, 1, 0.5), Duration::from_secs(2));
        assert_eq!(poll_delay(base, 3, 0.5), Duration::from_secs(8));
        assert_eq!(poll_delay(base, 9, 0.5), Duration::from_secs(8));
        assert_eq!(poll_delay(base, 0, 0.0), Duration::from_millis(800));
        assert!(poll_delay(base, 0, 0.999) < Duration::from_millis(1200));
    }
}
