//! Properties of the engine over random stacks: random dependency graphs with random failures,
//! replacements and retention, applied, changed, applied again and destroyed through the fake
//! provider. In every run, each node is acted on at most once, no node acts before what it
//! depends on has settled, destroy removes dependents first, and retention is closed over
//! dependencies.

mod fake;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use fake::{Cloud, Fake, graph};
use lakesight::engine::{self, Action, Direction, ExecOptions, Graph, Intent, Outcome, Report, Reporter, Values};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

/// One random stack: for each node, the earlier nodes it depends on (whose id it reads when it
/// depends on any), whether its create fails, whether the second apply replaces it, and whether
/// destroy retains it.
#[derive(Debug, Clone)]
struct Shape {
    deps: Vec<Vec<usize>>,
    fails: Vec<bool>,
    replaced: Vec<bool>,
    retained: Vec<bool>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (2usize..9).prop_flat_map(|n| {
        let deps = (0..n)
            .map(|i| proptest::collection::btree_set(0..i.max(1), 0..=i.min(3)).prop_map(move |s| filter(s, i)))
            .collect::<Vec<_>>();
        let flags = || proptest::collection::vec(proptest::bool::weighted(0.2), n);
        (deps, flags(), flags(), flags()).prop_map(|(deps, fails, replaced, retained)| Shape {
            deps,
            fails,
            replaced,
            retained,
        })
    })
}

/// Dependencies point to earlier nodes only, so the graph is acyclic.
fn filter(set: BTreeSet<usize>, i: usize) -> Vec<usize> {
    set.into_iter().filter(|&d| d < i).collect()
}

fn name(i: usize) -> String {
    format!("n{i}")
}

/// Builds the stack; `changed` gives the nodes a new spec that forces their replacement.
fn build(cloud: &Arc<Cloud>, shape: &Shape, changed: bool, fail: bool) -> Graph {
    let values = Values::new();
    let fakes = (0..shape.deps.len())
        .map(|i| {
            let deps: Vec<String> = shape.deps[i].iter().map(|&d| name(d)).collect();
            let (first, rest) = deps.split_first().map_or((None, &[][..]), |(f, r)| (Some(f), r));
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            let mut fake = Fake::new(cloud, &name(i), &rest);
            if let Some(first) = first {
                fake = fake.reading(&values, first);
            }
            if changed && shape.replaced[i] {
                fake = fake.spec("v2");
            }
            if shape.retained[i] {
                fake = fake.retained();
            }
            if fail && shape.fails[i] {
                fake = fake.failing();
            }
            fake
        })
        .collect();
    graph(values, fakes)
}

/// What the executor reported, in order.
#[derive(Default)]
struct Events(Mutex<Vec<(String, String)>>);

impl Reporter for Events {
    fn started(&self, address: &str, action: Action) {
        self.0.lock().unwrap().push((address.to_owned(), format!("start {action:?}")));
    }
    fn finished(&self, address: &str, outcome: &Outcome) {
        let settled = matches!(outcome, Outcome::Unchanged | Outcome::Applied(_));
        self.0.lock().unwrap().push((address.to_owned(), if settled { "settled" } else { "stopped" }.to_owned()));
    }
}

async fn run(g: &Graph, intent: Intent) -> (Report, Vec<(String, String)>) {
    let plan = engine::plan(g, intent, 3).await.expect("plan");
    let direction = if intent == Intent::Present { Direction::Forward } else { Direction::Reverse };
    let events = Arc::new(Events::default());
    let options = ExecOptions { parallelism: 3, cancel: CancellationToken::new() };
    let report = engine::execute(g, &plan, direction, &options, events.clone()).await;
    let events = events.0.lock().unwrap().clone();
    (report, events)
}

/// Each node starts at most once, and only after every node it waits on has settled.
fn check_walk(shape: &Shape, events: &[(String, String)], waits_on: impl Fn(usize) -> Vec<usize>) {
    let mut settled = BTreeSet::new();
    let mut started = HashMap::new();
    for (address, event) in events {
        if event.starts_with("start") {
            *started.entry(address.clone()).or_insert(0) += 1;
            let i: usize = address[1..].parse().expect("node index");
            for d in waits_on(i) {
                assert!(settled.contains(&name(d)), "{address} started before {} settled: {events:?}", name(d));
            }
        } else if event == "settled" {
            settled.insert(address.clone());
        }
    }
    assert!(started.values().all(|&n| n == 1), "a node acted twice: {started:?} in {shape:?}");
}

fn dependents(shape: &Shape, i: usize) -> Vec<usize> {
    (0..shape.deps.len()).filter(|&j| shape.deps[j].contains(&i)).collect()
}

/// Everything `i` transitively depends on.
fn closure(shape: &Shape, i: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = shape.deps[i].clone();
    while let Some(d) = stack.pop() {
        if seen.insert(d) {
            stack.extend(&shape.deps[d]);
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn apply_replace_and_destroy_keep_the_engines_promises(shape in shape()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        runtime.block_on(async {
            let cloud = Arc::new(Cloud::default());
            // A first apply where some creates fail: nothing downstream of a failure acts.
            let (_, events) = run(&build(&cloud, &shape, false, true), Intent::Present).await;
            check_walk(&shape, &events, |i| shape.deps[i].clone());
            for (i, failing) in shape.fails.iter().enumerate() {
                if *failing {
                    for j in dependents(&shape, i) {
                        prop_assert!(!events.iter().any(|(a, e)| a == &name(j) && e.starts_with("start")), "{} acted below a failure", name(j));
                    }
                }
            }
            // Converge, then replace some nodes: every node still acts at most once per run.
            let (report, events) = run(&build(&cloud, &shape, false, false), Intent::Present).await;
            prop_assert!(report.succeeded(), "{report:?}");
            check_walk(&shape, &events, |i| shape.deps[i].clone());
            let (report, events) = run(&build(&cloud, &shape, true, false), Intent::Present).await;
            prop_assert!(report.succeeded(), "{report:?}");
            check_walk(&shape, &events, |i| shape.deps[i].clone());
            let settled = build(&cloud, &shape, true, false);
            prop_assert!(!engine::plan(&settled, Intent::Present, 3).await.expect("plan").has_changes());

            // Destroy: dependents go first, and what a retained node needs stays.
            let (report, events) = run(&settled, Intent::Absent).await;
            prop_assert!(report.succeeded(), "{report:?}");
            check_walk(&shape, &events, |i| dependents(&shape, i));
            for i in (0..shape.deps.len()).filter(|&i| shape.retained[i]) {
                prop_assert!(cloud.get(&name(i)).is_some(), "{} is retained", name(i));
                for d in closure(&shape, i) {
                    prop_assert!(cloud.get(&name(d)).is_some(), "{} is needed by retained {}", name(d), name(i));
                }
            }
            let kept: BTreeSet<usize> =
                (0..shape.deps.len()).filter(|&i| shape.retained[i]).flat_map(|i| closure(&shape, i).into_iter().chain([i])).collect();
            for i in (0..shape.deps.len()).filter(|i| !kept.contains(i)) {
                prop_assert!(cloud.get(&name(i)).is_none(), "{} should be gone", name(i));
            }
            let (again, _) = run(&settled, Intent::Absent).await;
            prop_assert!(again.outcomes.iter().all(|(_, o)| *o == Outcome::Unchanged), "destroy converged: {again:?}");
            Ok(())
        })?;
    }
}

#[test]
fn the_shapes_cover_what_the_property_needs() {
    // A fixed shape with a retained leaf's chain, a failure and a replacement.
    let shape = Shape {
        deps: vec![vec![], vec![0], vec![1], vec![0]],
        fails: vec![false, true, false, false],
        replaced: vec![true, false, false, false],
        retained: vec![false, false, true, false],
    };
    assert_eq!(closure(&shape, 2), BTreeSet::from([0, 1]));
    assert_eq!(dependents(&shape, 0), [1, 3]);
}
