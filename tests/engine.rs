//! Engine tests with an in-memory fake cloud: ordering, concurrency, failure propagation,
//! readiness polling, destroy order, and an interrupted apply converging on re-apply.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lakesight::engine::{
    self, Action, Direction, ExecOptions, Graph, GraphError, Intent, Node, NodeError, Observation, Outcome, Ownership,
    Readiness, Silent, Values,
};
use tokio_util::sync::CancellationToken;

/// The fake cloud: which resources exist, and a log of every mutation in order.
#[derive(Default)]
struct Cloud {
    existing: Mutex<HashSet<String>>,
    log: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Cloud {
    fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn position(&self, entry: &str) -> usize {
        self.log().iter().position(|e| e == entry).unwrap_or_else(|| panic!("{entry} not in {:?}", self.log()))
    }
}

struct FakeNode {
    address: String,
    deps: Vec<String>,
    cloud: Arc<Cloud>,
    work: Duration,
    fail: bool,
    pending_polls: AtomicUsize,
    serial: Option<String>,
    timeout: Duration,
}

impl FakeNode {
    fn new(cloud: &Arc<Cloud>, address: &str, deps: &[&str]) -> FakeNode {
        FakeNode {
            address: address.into(),
            deps: deps.iter().map(|d| (*d).to_owned()).collect(),
            cloud: Arc::clone(cloud),
            work: Duration::from_millis(20),
            fail: false,
            pending_polls: AtomicUsize::new(0),
            serial: None,
            timeout: Duration::from_secs(5),
        }
    }
    fn failing(mut self) -> Self {
        self.fail = true;
        self
    }
    fn pending_for(self, polls: usize) -> Self {
        self.pending_polls.store(polls, Ordering::SeqCst);
        self
    }
    fn working(mut self, work: Duration) -> Self {
        self.work = work;
        self
    }
    fn timing_out_after(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    fn serialised(mut self, key: &str) -> Self {
        self.serial = Some(key.into());
        self
    }
}

#[async_trait]
impl Node for FakeNode {
    fn address(&self) -> &str {
        &self.address
    }
    fn name(&self) -> &str {
        &self.address
    }
    fn depends_on(&self) -> &[String] {
        &self.deps
    }
    fn serial_key(&self) -> Option<&str> {
        self.serial.as_deref()
    }
    fn wait_timeout(&self) -> Duration {
        self.timeout
    }
    async fn observe(&self) -> Result<Observation, NodeError> {
        let exists = self.cloud.existing.lock().unwrap().contains(&self.address);
        Ok(if exists {
            Observation { ownership: Some(Ownership::Owned), ..Observation::absent() }
        } else {
            Observation::absent()
        })
    }
    async fn apply(&self, action: Action) -> Result<(), NodeError> {
        let now = self.cloud.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.cloud.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.cloud.record(format!("start {action:?} {}", self.address));
        tokio::time::sleep(self.work).await;
        self.cloud.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.fail {
            return Err(format!("{} exploded", self.address).into());
        }
        if self.address.starts_with("panics") {
            panic!("{} hit a bug", self.address);
        }
        match action {
            Action::Delete => self.cloud.existing.lock().unwrap().remove(&self.address),
            _ => self.cloud.existing.lock().unwrap().insert(self.address.clone()),
        };
        self.cloud.record(format!("done {action:?} {}", self.address));
        Ok(())
    }
    async fn abandon(&self) -> Result<(), NodeError> {
        self.cloud.record(format!("abandoned {}", self.address));
        Ok(())
    }
    async fn readiness(&self) -> Result<Readiness, NodeError> {
        let left = self.pending_polls.load(Ordering::SeqCst);
        if left == 0 {
            self.cloud.record(format!("ready {}", self.address));
            return Ok(Readiness::Ready);
        }
        self.pending_polls.store(left - 1, Ordering::SeqCst);
        Ok(Readiness::Pending { status: "Creating".into(), retry_after: Duration::from_millis(30) })
    }
}

fn graph(nodes: Vec<FakeNode>) -> Graph {
    Graph::new(nodes.into_iter().map(|n| Arc::new(n) as Arc<dyn Node>).collect(), Values::new()).expect("valid graph")
}

async fn run(graph: &Graph, intent: Intent, parallelism: usize, cancel: CancellationToken) -> engine::Report {
    let plan = engine::plan(graph, intent, parallelism).await.expect("plan");
    let direction = if intent == Intent::Present { Direction::Forward } else { Direction::Reverse };
    engine::execute(graph, &plan, direction, &ExecOptions { parallelism, cancel }, Arc::new(Silent)).await
}

/// bucket ← role ← model ← endpoint, and an independent queue.
fn chain(cloud: &Arc<Cloud>) -> Vec<FakeNode> {
    vec![
        FakeNode::new(cloud, "endpoint", &["model"]),
        FakeNode::new(cloud, "model", &["role", "bucket"]),
        FakeNode::new(cloud, "role", &[]),
        FakeNode::new(cloud, "bucket", &[]),
        FakeNode::new(cloud, "queue", &[]),
    ]
}

#[tokio::test]
async fn dependencies_finish_before_dependents_start() {
    let cloud = Arc::new(Cloud::default());
    let report = run(&graph(chain(&cloud)), Intent::Present, 10, CancellationToken::new()).await;
    assert!(report.succeeded(), "{report:?}");
    assert!(cloud.position("ready role") < cloud.position("start Create model"));
    assert!(cloud.position("ready bucket") < cloud.position("start Create model"));
    assert!(cloud.position("ready model") < cloud.position("start Create endpoint"));
}

#[tokio::test]
async fn independent_nodes_run_concurrently_within_the_limit() {
    let cloud = Arc::new(Cloud::default());
    let nodes: Vec<FakeNode> =
        (0..8).map(|i| FakeNode::new(&cloud, &format!("n{i}"), &[]).working(Duration::from_millis(60))).collect();
    let report = run(&graph(nodes), Intent::Present, 3, CancellationToken::new()).await;
    assert!(report.succeeded());
    assert_eq!(cloud.max_in_flight.load(Ordering::SeqCst), 3, "parallelism is both used and respected");
}

#[tokio::test]
async fn a_failure_skips_its_dependents_and_lets_other_branches_finish() {
    let cloud = Arc::new(Cloud::default());
    let mut nodes = chain(&cloud);
    nodes[2] = FakeNode::new(&cloud, "role", &[]).failing();
    let report = run(&graph(nodes), Intent::Present, 10, CancellationToken::new()).await;
    assert!(matches!(report.outcome("role"), Some(Outcome::Failed(e)) if e.contains("exploded")));
    assert_eq!(report.outcome("model"), Some(&Outcome::Skipped { blocked_by: "role".into() }));
    assert_eq!(
        report.outcome("endpoint"),
        Some(&Outcome::Skipped { blocked_by: "role".into() }),
        "the root cause is named once"
    );
    assert_eq!(report.outcome("queue"), Some(&Outcome::Applied(Action::Create)));
    assert_eq!(report.outcome("bucket"), Some(&Outcome::Applied(Action::Create)));
    assert!(!cloud.log().iter().any(|e| e.contains("model") || e.contains("endpoint")));
}

#[tokio::test]
async fn a_panicking_resource_fails_alone() {
    let cloud = Arc::new(Cloud::default());
    let nodes = vec![
        FakeNode::new(&cloud, "panics", &[]),
        FakeNode::new(&cloud, "after", &["panics"]),
        FakeNode::new(&cloud, "independent", &[]),
    ];
    let report = run(&graph(nodes), Intent::Present, 10, CancellationToken::new()).await;
    assert!(matches!(report.outcome("panics"), Some(Outcome::Failed(e)) if e.contains("panicked")), "{report:?}");
    assert_eq!(report.outcome("after"), Some(&Outcome::Skipped { blocked_by: "panics".into() }));
    assert_eq!(report.outcome("independent"), Some(&Outcome::Applied(Action::Create)));
}

#[tokio::test]
async fn pending_readiness_gives_its_slot_back() {
    let cloud = Arc::new(Cloud::default());
    // One slot: if the slow node held it while waiting, the other could not start before it is ready.
    let nodes = vec![
        FakeNode::new(&cloud, "slow", &[]).pending_for(5).working(Duration::from_millis(1)),
        FakeNode::new(&cloud, "fast", &[]).working(Duration::from_millis(1)),
    ];
    let report = run(&graph(nodes), Intent::Present, 1, CancellationToken::new()).await;
    assert!(report.succeeded());
    assert!(cloud.position("ready fast") < cloud.position("ready slow"), "{:?}", cloud.log());
}

/// Records what the executor reports, as the CLI's progress display receives it.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl engine::Reporter for Recorder {
    fn started(&self, address: &str, action: Action) {
        self.0.lock().unwrap().push(format!("started {address} {action:?}"));
    }
    fn waiting(&self, address: &str, status: &str, _elapsed: Duration) {
        self.0.lock().unwrap().push(format!("waiting {address} {status}"));
    }
    fn finished(&self, address: &str, outcome: &Outcome) {
        self.0.lock().unwrap().push(format!("finished {address} {outcome:?}"));
    }
}

#[tokio::test]
async fn progress_reports_start_each_wait_with_the_provider_status_and_the_end() {
    let cloud = Arc::new(Cloud::default());
    let g = graph(vec![FakeNode::new(&cloud, "endpoint", &[]).pending_for(2)]);
    let plan = engine::plan(&g, Intent::Present, 1).await.expect("plan");
    let recorder = Arc::new(Recorder::default());
    let options = ExecOptions { parallelism: 1, cancel: CancellationToken::new() };
    engine::execute(&g, &plan, Direction::Forward, &options, recorder.clone()).await;
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            "started endpoint Create",
            "waiting endpoint Creating",
            "waiting endpoint Creating",
            "finished endpoint Applied(Create)",
        ]
    );
}

#[tokio::test]
async fn readiness_that_never_comes_times_out() {
    let cloud = Arc::new(Cloud::default());
    let node = FakeNode::new(&cloud, "stuck", &[]).pending_for(usize::MAX).timing_out_after(Duration::from_millis(200));
    let report = run(&graph(vec![node]), Intent::Present, 1, CancellationToken::new()).await;
    assert!(
        matches!(report.outcome("stuck"), Some(Outcome::Failed(e)) if e.contains("still Creating after")),
        "{report:?}"
    );
}

#[tokio::test]
async fn serialised_nodes_never_mutate_together() {
    let cloud = Arc::new(Cloud::default());
    let nodes: Vec<FakeNode> = (0..4)
        .map(|i| {
            FakeNode::new(&cloud, &format!("lake{i}"), &[])
                .serialised("securitylake/us-east-1")
                .working(Duration::from_millis(30))
        })
        .collect();
    let report = run(&graph(nodes), Intent::Present, 10, CancellationToken::new()).await;
    assert!(report.succeeded());
    assert_eq!(cloud.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn destroy_walks_the_graph_in_reverse() {
    let cloud = Arc::new(Cloud::default());
    let g = graph(chain(&cloud));
    assert!(run(&g, Intent::Present, 10, CancellationToken::new()).await.succeeded());
    let report = run(&g, Intent::Absent, 10, CancellationToken::new()).await;
    assert!(report.succeeded(), "{report:?}");
    assert!(cloud.position("done Delete endpoint") < cloud.position("start Delete model"));
    assert!(cloud.position("done Delete model") < cloud.position("start Delete role"));
    assert!(cloud.position("done Delete model") < cloud.position("start Delete bucket"));
    assert!(cloud.existing.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_interrupted_apply_converges_when_run_again() {
    let cloud = Arc::new(Cloud::default());
    let nodes: Vec<FakeNode> = chain(&cloud).into_iter().map(|n| n.working(Duration::from_millis(80))).collect();
    let g = graph(nodes);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let first = run(&g, Intent::Present, 10, cancel).await;
    assert!(first.interrupted(), "{first:?}");
    assert_eq!(first.outcome("endpoint"), Some(&Outcome::Interrupted));
    let created_first: usize = cloud.existing.lock().unwrap().len();
    assert!((1..5).contains(&created_first), "the first run stopped part-way: {created_first}");

    let second = run(&g, Intent::Present, 10, CancellationToken::new()).await;
    assert!(second.succeeded(), "{second:?}");
    let outcomes: HashMap<&str, &Outcome> = second.outcomes.iter().map(|(a, o)| (a.as_str(), o)).collect();
    assert_eq!(outcomes["endpoint"], &Outcome::Applied(Action::Create));
    assert_eq!(outcomes["role"], &Outcome::Unchanged, "finished work is not redone");
    assert_eq!(cloud.existing.lock().unwrap().len(), 5);
    let replan = engine::plan(&g, Intent::Present, 10).await.expect("plan");
    assert!(!replan.has_changes());
}

#[tokio::test]
async fn an_interruption_during_a_wait_abandons_the_work_in_progress() {
    let cloud = Arc::new(Cloud::default());
    let g = graph(vec![FakeNode::new(&cloud, "query", &[]).pending_for(usize::MAX)]);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        trigger.cancel();
    });
    let report = run(&g, Intent::Present, 2, cancel).await;
    assert_eq!(report.outcome("query"), Some(&Outcome::Interrupted));
    assert!(cloud.log().contains(&"abandoned query".to_owned()), "{:?}", cloud.log());
}

#[test]
fn cycles_and_unknown_dependencies_are_rejected() {
    let cloud = Arc::new(Cloud::default());
    let cyclic =
        vec![FakeNode::new(&cloud, "a", &["b"]), FakeNode::new(&cloud, "b", &["a"]), FakeNode::new(&cloud, "c", &[])];
    match Graph::new(cyclic.into_iter().map(|n| Arc::new(n) as Arc<dyn Node>).collect(), Values::new()) {
        Err(GraphError::Cycle(members)) => assert_eq!(members, ["a", "b"]),
        other => panic!("expected a cycle, got {:?}", other.err()),
    }
    let dangling = vec![FakeNode::new(&cloud, "a", &["ghost"])];
    assert_eq!(
        Graph::new(dangling.into_iter().map(|n| Arc::new(n) as Arc<dyn Node>).collect(), Values::new()).err(),
        Some(GraphError::UnknownDependency { from: "a".into(), to: "ghost".into() })
    );
}
