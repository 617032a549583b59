//! Engine tests through the resource adapter, with an in-memory fake provider whose resources
//! publish outputs and take inputs: replacement cascading to dependents in the same apply, plans
//! re-made before acting, retention closed over dependencies, awaited deletes, waiting for data,
//! and a converged stack that neither mutates nor plans anything.

mod fake;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fake::{Cloud, Fake, Stored, graph};
use lakesight::engine::{
    self, AFTER_APPLY, Action, Direction, ExecOptions, Graph, Intent, Node, Outcome, Report, Silent, Undeclared, Values,
};
use lakesight::resource::Managed;
use tokio_util::sync::CancellationToken;

async fn run(graph: &Graph, intent: Intent) -> (engine::Plan, Report) {
    let plan = engine::plan(graph, intent, 4).await.expect("plan");
    let direction = if intent == Intent::Present { Direction::Forward } else { Direction::Reverse };
    let options = ExecOptions { parallelism: 4, cancel: CancellationToken::new() };
    let report = engine::execute(graph, &plan, direction, &options, Arc::new(Silent)).await;
    (plan, report)
}

/// subscriber → notification (reads the subscriber's id) → trigger (reads the notification's id).
fn subscriber_chain(cloud: &Arc<Cloud>, subscriber_spec: &str) -> Graph {
    let values = Values::new();
    graph(
        Arc::clone(&values),
        vec![
            Fake::new(cloud, "subscriber", &[]).spec(subscriber_spec),
            Fake::new(cloud, "notification", &[]).reading(&values, "subscriber"),
            Fake::new(cloud, "trigger", &[]).reading(&values, "notification"),
        ],
    )
}

#[tokio::test]
async fn values_not_known_until_apply_are_shown_so_and_reach_dependents() {
    let cloud = Arc::new(Cloud::default());
    let g = subscriber_chain(&cloud, "v1");
    let (plan, report) = run(&g, Intent::Present).await;
    assert_eq!(plan.node("trigger").map(|n| n.reason.clone()), Some(format!("from {AFTER_APPLY}")));
    assert!(report.succeeded(), "{report:?}");
    let subscriber = cloud.get("subscriber").expect("created");
    let notification = cloud.get("notification").expect("created");
    assert_eq!(notification.input, Some(format!("subscriber@{}", subscriber.generation)));
    assert_eq!(cloud.get("trigger").and_then(|t| t.input), Some(format!("notification@{}", notification.generation)));
}

#[tokio::test]
async fn a_replacement_cascades_to_its_dependents_in_the_same_apply() {
    let cloud = Arc::new(Cloud::default());
    assert!(run(&subscriber_chain(&cloud, "v1"), Intent::Present).await.1.succeeded());

    let g = subscriber_chain(&cloud, "v2");
    let (plan, report) = run(&g, Intent::Present).await;
    assert_eq!(plan.action_of("subscriber"), Some(Action::Replace));
    assert_eq!(plan.action_of("notification"), Some(Action::NoOp), "approved as unchanged");
    assert!(report.succeeded(), "{report:?}");
    let replanned: Vec<(&str, Action)> = report.replanned.iter().map(|r| (r.address.as_str(), r.applied)).collect();
    assert_eq!(replanned, [("notification", Action::Replace), ("trigger", Action::Replace)]);
    let subscriber = cloud.get("subscriber").expect("replaced");
    assert_eq!(cloud.get("notification").and_then(|n| n.input), Some(format!("subscriber@{}", subscriber.generation)));
    assert!(!engine::plan(&g, Intent::Present, 4).await.expect("plan").has_changes(), "converged");
}

#[tokio::test]
async fn a_change_nothing_upstream_explains_stops_the_node_with_the_reason() {
    let cloud = Arc::new(Cloud::default());
    let values = Values::new();
    let g = graph(Arc::clone(&values), vec![Fake::new(&cloud, "queue", &[]).spec("v1")]);
    let plan = engine::plan(&g, Intent::Present, 1).await.expect("plan");
    assert_eq!(plan.action_of("queue"), Some(Action::Create));
    // Someone else creates it with other settings between plan and apply.
    let foreign = Stored { spec: "v0".into(), input: None, generation: 99, deleting: None };
    cloud.resources.lock().unwrap().insert("queue".into(), foreign);
    let options = ExecOptions { parallelism: 1, cancel: CancellationToken::new() };
    let report = engine::execute(&g, &plan, Direction::Forward, &options, Arc::new(Silent)).await;
    assert!(
        matches!(report.outcome("queue"), Some(Outcome::Failed(e)) if e.contains("nothing this run changed explains it")),
        "{report:?}"
    );
    assert_eq!(cloud.get("queue").map(|q| q.generation), Some(99), "left as found");
}

#[tokio::test]
async fn a_converged_stack_plans_nothing_and_its_apply_makes_no_mutating_call() {
    let cloud = Arc::new(Cloud::default());
    let g = subscriber_chain(&cloud, "v1");
    assert!(run(&g, Intent::Present).await.1.succeeded());
    let before = cloud.mutations.load(Ordering::SeqCst);
    let (plan, report) = run(&g, Intent::Present).await;
    assert!(!plan.has_changes());
    assert!(report.outcomes.iter().all(|(_, o)| *o == Outcome::Unchanged), "{report:?}");
    assert_eq!(cloud.mutations.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_retained_node_keeps_what_it_depends_on_and_the_plan_says_why() {
    let cloud = Arc::new(Cloud::default());
    let values = Values::new();
    let g = graph(
        Arc::clone(&values),
        vec![
            Fake::new(&cloud, "role", &[]),
            Fake::new(&cloud, "lake", &["role"]).retained(),
            Fake::new(&cloud, "bucket", &[]),
        ],
    );
    assert!(run(&g, Intent::Present).await.1.succeeded());
    let (plan, report) = run(&g, Intent::Absent).await;
    assert!(report.succeeded(), "{report:?}");
    let role = plan.node("role").expect("planned");
    assert_eq!((role.action, role.reason.as_str()), (Action::NoOp, "kept: the retained lake needs it"));
    assert_eq!(plan.action_of("bucket"), Some(Action::Delete));
    assert!(cloud.get("role").is_some() && cloud.get("lake").is_some());
    assert!(!engine::plan(&g, Intent::Absent, 4).await.expect("plan").has_changes(), "destroy is a no-op now");
}

#[tokio::test]
async fn an_apply_keeps_a_retained_node_the_manifest_dropped_and_what_it_needs_and_says_why() {
    let cloud = Arc::new(Cloud::default());
    let nodes = |dropped: bool| {
        let mark = |f: Fake| if dropped { f.dropped() } else { f };
        vec![
            mark(Fake::new(&cloud, "role", &[])),
            mark(Fake::new(&cloud, "lake", &["role"]).retained()),
            mark(Fake::new(&cloud, "queue", &[])),
        ]
    };
    assert!(run(&graph(Values::new(), nodes(false)), Intent::Present).await.1.succeeded());
    let (plan, report) = run(&graph(Values::new(), nodes(true)), Intent::Present).await;
    assert!(report.succeeded(), "{report:?}");
    let lake = plan.node("lake").expect("a kept node is shown");
    assert_eq!((lake.action, lake.reason.as_str()), (Action::NoOp, "kept by its deletionPolicy (Retain)"));
    let role = plan.node("role").expect("what it needs is shown");
    assert_eq!((role.action, role.reason.as_str()), (Action::NoOp, "kept: the retained lake needs it"));
    assert_eq!(plan.action_of("queue"), Some(Action::Delete));
    assert!(cloud.get("lake").is_some() && cloud.get("role").is_some() && cloud.get("queue").is_none());
}

#[tokio::test]
async fn a_replacement_waits_until_the_old_resource_is_gone() {
    let cloud = Arc::new(Cloud::default());
    let values = Values::new();
    let g = graph(Arc::clone(&values), vec![Fake::new(&cloud, "queue", &[]).spec("v1").slow_to_delete(3)]);
    assert!(run(&g, Intent::Present).await.1.succeeded());
    let g = graph(Values::new(), vec![Fake::new(&cloud, "queue", &[]).spec("v2").slow_to_delete(3)]);
    let (_, report) = run(&g, Intent::Present).await;
    assert_eq!(report.outcome("queue"), Some(&Outcome::Applied(Action::Replace)), "{report:?}");
    assert_eq!(cloud.get("queue").map(|q| q.spec), Some("v2".into()));
}

#[tokio::test]
async fn a_destroy_is_done_only_when_the_resource_reads_as_gone() {
    let cloud = Arc::new(Cloud::default());
    let values = Values::new();
    let g = graph(
        Arc::clone(&values),
        vec![Fake::new(&cloud, "role", &[]), Fake::new(&cloud, "endpoint", &["role"]).slow_to_delete(4)],
    );
    assert!(run(&g, Intent::Present).await.1.succeeded());
    let (_, report) = run(&g, Intent::Absent).await;
    assert!(report.succeeded(), "{report:?}");
    let log = cloud.log.lock().unwrap().clone();
    assert!(cloud.get("endpoint").is_none(), "its readiness read it until it was gone");
    let at = |entry: &str| log.iter().position(|e| e == entry).unwrap_or_else(|| panic!("{entry} in {log:?}"));
    assert!(at("gone endpoint") < at("delete role"), "the role waited until the endpoint was gone: {log:?}");
}

#[tokio::test]
async fn a_node_waiting_for_data_stops_its_subtree_without_failing_the_run() {
    let cloud = Arc::new(Cloud::default());
    let values = Values::new();
    let g = graph(
        Arc::clone(&values),
        vec![
            Fake::new(&cloud, "features", &[]).waiting("waiting for data: 12 rows, 2 entities"),
            Fake::new(&cloud, "training", &[]).reading(&values, "features"),
            Fake::new(&cloud, "model", &[]).reading(&values, "training"),
            Fake::new(&cloud, "queue", &[]),
        ],
    );
    let (_, report) = run(&g, Intent::Present).await;
    assert!(report.succeeded(), "waiting is not failing: {report:?}");
    assert_eq!(report.waiting(), [("features", "waiting for data: 12 rows, 2 entities")]);
    assert_eq!(report.outcome("training"), Some(&Outcome::Deferred { waits_on: "features".into() }));
    assert_eq!(report.outcome("model"), Some(&Outcome::Deferred { waits_on: "features".into() }));
    assert_eq!(report.outcome("queue"), Some(&Outcome::Applied(Action::Create)));
    assert!(cloud.get("training").is_none());
}

#[tokio::test]
async fn what_the_manifest_no_longer_names_is_removed_by_an_apply() {
    let cloud = Arc::new(Cloud::default());
    let g = graph(Values::new(), vec![Fake::new(&cloud, "source/a", &[]), Fake::new(&cloud, "source/b", &[])]);
    assert!(run(&g, Intent::Present).await.1.succeeded());
    let g =
        graph(Values::new(), vec![Fake::new(&cloud, "source/a", &[]), Fake::new(&cloud, "source/b", &[]).dropped()]);
    let (plan, report) = run(&g, Intent::Present).await;
    let dropped = plan.node("source/b").expect("planned");
    assert_eq!((dropped.action, dropped.reason.as_str()), (Action::Delete, "no longer in the manifest"));
    assert_eq!(plan.action_of("source/a"), Some(Action::NoOp));
    assert!(report.succeeded(), "{report:?}");
    assert!(cloud.get("source/b").is_none() && cloud.get("source/a").is_some());
    assert!(!engine::plan(&g, Intent::Present, 4).await.expect("plan").has_changes(), "converged");
}

#[tokio::test]
async fn a_dropped_chain_is_removed_dependents_first_and_what_is_gone_leaves_the_plan() {
    let cloud = Arc::new(Cloud::default());
    let values = Values::new();
    let chain = |values: &Arc<Values>, dropped: bool| {
        let mark = |f: Fake| if dropped { f.dropped() } else { f };
        vec![
            Fake::new(&cloud, "bucket", &[]),
            mark(Fake::new(&cloud, "role", &["bucket"])),
            mark(Fake::new(&cloud, "function", &[]).reading(values, "role")),
            mark(Fake::new(&cloud, "trigger", &[]).reading(values, "function")),
        ]
    };
    assert!(run(&graph(Arc::clone(&values), chain(&values, false)), Intent::Present).await.1.succeeded());
    let values = Values::new();
    let g = graph(Arc::clone(&values), chain(&values, true));
    let (plan, report) = run(&g, Intent::Present).await;
    assert!(report.succeeded(), "{report:?}");
    for address in ["role", "function", "trigger"] {
        assert_eq!(plan.action_of(address), Some(Action::Delete), "{address}");
    }
    let log = cloud.log.lock().unwrap().clone();
    let at = |entry: &str| log.iter().position(|e| e == entry).unwrap_or_else(|| panic!("{entry} in {log:?}"));
    assert!(at("delete trigger") < at("delete function") && at("delete function") < at("delete role"), "{log:?}");
    assert!(cloud.get("bucket").is_some());
    let again = engine::plan(&g, Intent::Present, 4).await.expect("plan");
    let listed: Vec<&str> = again.nodes.iter().map(|n| n.address.as_str()).collect();
    assert_eq!(listed, ["bucket"], "what is gone and no longer declared is not planned");
    let values = Values::new();
    let (_, report) = run(&graph(Arc::clone(&values), chain(&values, true)), Intent::Present).await;
    assert!(report.succeeded(), "nothing waits for what is gone: {report:?}");
    let reported: Vec<&str> = report.outcomes.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(reported, ["bucket"], "nor is it reported");
}

#[tokio::test]
async fn a_declared_node_that_waits_on_a_dropped_one_acts_after_its_removal() {
    let cloud = Arc::new(Cloud::default());
    let nodes = |dropped: bool| {
        let source = Fake::new(&cloud, "source", &[]);
        let record = Fake::new(&cloud, "record", &["source"]).spec(if dropped { "v2" } else { "v1" });
        graph(Values::new(), vec![if dropped { source.dropped() } else { source }, record])
    };
    assert!(run(&nodes(false), Intent::Present).await.1.succeeded());
    let (_, report) = run(&nodes(true), Intent::Present).await;
    assert!(report.succeeded(), "{report:?}");
    let log = cloud.log.lock().unwrap().clone();
    let at = |entry: &str| log.iter().position(|e| e == entry).unwrap_or_else(|| panic!("{entry} in {log:?}"));
    assert!(at("delete source") < at("delete record"), "{log:?}");
}

#[tokio::test]
async fn a_removal_never_waits_on_a_node_the_manifest_still_declares() {
    let cloud = Arc::new(Cloud::default());
    let values = Values::new();
    let nodes = |values: &Arc<Values>, dropped: bool| {
        let model = Fake::new(&cloud, "model", &[]).reading(values, "job");
        vec![Fake::new(&cloud, "job", &[]), if dropped { model.dropped() } else { model }]
    };
    assert!(run(&graph(Arc::clone(&values), nodes(&values, false)), Intent::Present).await.1.succeeded());
    // The job now waits for data; the model the manifest dropped goes all the same.
    let values = Values::new();
    let mut now = nodes(&values, true);
    now[0] = Fake::new(&cloud, "job", &[]).waiting("not enough data");
    let (_, report) = run(&graph(Arc::clone(&values), now), Intent::Present).await;
    assert_eq!(report.outcome("model"), Some(&Outcome::Applied(Action::Delete)), "{report:?}");
    assert!(cloud.get("model").is_none());
}

#[tokio::test]
async fn a_dropped_resource_goes_only_after_the_declared_users_it_releases_have_switched() {
    let cloud = Arc::new(Cloud::default());
    let first = vec![Fake::new(&cloud, "role", &[]), Fake::new(&cloud, "function", &["role"])];
    assert!(run(&graph(Values::new(), first), Intent::Present).await.1.succeeded());
    // The function now uses a role given by ARN: it is updated, and then the stack's role goes.
    let function = Fake::new(&cloud, "function", &[]).spec("v2").slow_to_delete(3);
    let function: Arc<dyn Node> = Arc::new(Managed::new(function));
    let role = Undeclared::new(Arc::new(Managed::new(Fake::new(&cloud, "role", &[]))));
    let nodes: Vec<Arc<dyn Node>> = vec![Arc::new(role.released_by(vec!["function".into()])), function];
    let (_, report) = run(&Graph::new(nodes, Values::new()).expect("graph"), Intent::Present).await;
    assert!(report.succeeded(), "{report:?}");
    let log = cloud.log.lock().unwrap().clone();
    let last = |entry: &str| log.iter().rposition(|e| e == entry).unwrap_or_else(|| panic!("{entry} in {log:?}"));
    assert!(last("create function from None") < last("delete role"), "{log:?}");
}
