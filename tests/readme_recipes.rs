//! The GitOps and scheduling recipes in README.md ("Running from GitOps pipelines and schedules")
//! are held to what they claim: each block, found by the `<!-- recipe: NAME -->` comment before it,
//! parses, has the shape the text describes, and every `lakesight ...` command line in it is one
//! the real command-line parser accepts.

mod support;

use clap::Parser;
use lakesight::cli::Cli;
use serde_json::Value;

/// The fenced block after `<!-- recipe: NAME -->`.
fn recipe(name: &str) -> String {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).expect("README.md");
    let marker = format!("<!-- recipe: {name} -->");
    let after = &readme[readme.find(&marker).unwrap_or_else(|| panic!("{marker} in README.md")) + marker.len()..];
    let fence = after.find("```").unwrap_or_else(|| panic!("a fenced block after {marker}"));
    let body = &after[fence + 3..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("```").expect("closing fence")].to_owned()
}

fn yaml(name: &str) -> Value {
    yaml_serde::from_str(&recipe(name)).unwrap_or_else(|e| panic!("recipe {name} is not YAML: {e}"))
}

/// The `lakesight` invocations in a shell text: from `lakesight` in a command's place (a line's
/// first word, or after a shell operator) to the end of the line or the next operator.
fn commands(shell: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in shell.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let command_word = |i: usize| i == 0 || matches!(words[i - 1], "&&" | "||" | ";" | "|" | "then" | "do");
        let Some(start) = (0..words.len()).find(|&i| words[i] == "lakesight" && command_word(i)) else { continue };
        let args = words[start..]
            .iter()
            .take_while(|w| !matches!(**w, ">" | ">>" | "|" | "||" | "&&" | ";" | "2>&1"))
            .map(|w| w.trim_matches('"').to_owned())
            .collect();
        found.push(args);
    }
    found
}

/// The CLI's own parser accepts the command line.
fn accepted(args: &[String]) {
    if let Err(e) = Cli::try_parse_from(args) {
        panic!("`{}` is not a valid lakesight command line: {e}", args.join(" "));
    }
}

/// A five-field cron expression whose fields are numbers, ranges, lists, steps or `*` in range.
fn valid_cron(expr: &str) -> bool {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let limits = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    fields.len() == 5
        && fields.iter().zip(limits).all(|(field, (lo, hi))| {
            field.split(',').all(|part| {
                let (range, step) = part.split_once('/').map_or((part, None), |(r, s)| (r, Some(s)));
                let step_ok = step.is_none_or(|s| s.parse::<u32>().is_ok_and(|s| s > 0));
                let in_range = |v: &str| v.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v));
                let range_ok = range == "*"
                    || range.split_once('-').map_or_else(|| in_range(range), |(a, b)| in_range(a) && in_range(b));
                step_ok && range_ok
            })
        })
}

/// Every `run:` script of a workflow's steps, by job.
fn scripts(workflow: &Value, job: &str) -> Vec<String> {
    let steps = workflow["jobs"][job]["steps"].as_array().unwrap_or_else(|| panic!("job {job} has steps"));
    steps.iter().filter_map(|s| s["run"].as_str().map(str::to_owned)).collect()
}

#[test]
fn the_ci_workflow_plans_pull_requests_and_applies_merges() {
    let workflow = yaml("ci-workflow");
    assert!(workflow["on"]["pull_request"].is_object(), "runs on pull requests: {workflow}");
    assert_eq!(workflow["on"]["push"]["branches"], serde_json::json!(["main"]));
    assert_eq!(workflow["concurrency"]["cancel-in-progress"], false, "a running apply is never cancelled");

    let plan = scripts(&workflow, "plan").join("\n");
    let plan_commands = commands(&plan);
    assert!(
        plan_commands.iter().any(|c| c[1] == "plan"
            && c.contains(&"--detailed-exitcode".to_owned())
            && c.windows(2).any(|w| w == ["--output", "json"])),
        "{plan}"
    );
    assert!(plan.contains("2)") && plan.contains("set +e"), "exit 2 (changes) is not a failure: {plan}");
    assert!(workflow["jobs"]["plan"]["if"].as_str().is_some_and(|c| c.contains("pull_request")));

    let apply = scripts(&workflow, "apply").join("\n");
    assert!(commands(&apply).iter().any(|c| c[1] == "apply" && c.contains(&"--auto-approve".to_owned())), "{apply}");
    assert!(workflow["jobs"]["apply"]["if"].as_str().is_some_and(|c| c.contains("refs/heads/main")));
    for command in plan_commands.iter().chain(&commands(&apply)) {
        accepted(command);
    }
}

#[test]
fn the_scheduled_workflow_retrains_on_a_valid_cron() {
    let workflow = yaml("retrain-schedule");
    let schedule = workflow["on"]["schedule"].as_array().expect("a schedule");
    for entry in schedule {
        let cron = entry["cron"].as_str().expect("cron");
        assert!(valid_cron(cron), "{cron}");
    }
    let retrain = commands(&scripts(&workflow, "retrain").join("\n"));
    assert!(retrain.iter().any(|c| c[1] == "retrain"), "{retrain:?}");
    for command in &retrain {
        accepted(command);
    }
}

#[test]
fn the_cronjob_never_overlaps_and_runs_retrain() {
    let job = yaml("retrain-cronjob");
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "CronJob");
    assert!(job["spec"]["schedule"].as_str().is_some_and(valid_cron), "{}", job["spec"]["schedule"]);
    assert_eq!(job["spec"]["concurrencyPolicy"], "Forbid");
    let containers =
        job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    let command: Vec<String> = containers[0]["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    assert_eq!(command[..2], ["lakesight", "retrain"]);
    accepted(&command);
}

#[test]
fn the_crontab_line_has_five_time_fields_and_runs_retrain() {
    let text = recipe("retrain-crontab");
    let line = text.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#')).expect("a crontab line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(valid_cron(&fields[..5].join(" ")), "{line}");
    let found = commands(&fields[5..].join(" "));
    assert_eq!(found.len(), 1, "{line}");
    assert_eq!(found[0][1], "retrain");
    accepted(&found[0]);
}

#[test]
fn the_iam_policy_recipe_and_its_example() {
    let found = commands(&recipe("iam-policy"));
    assert!(found.iter().any(|c| c[1] == "iam-policy"), "{found:?}");
    for command in &found {
        accepted(command);
    }
    let example: Value = serde_json::from_str(&recipe("iam-policy-example")).expect("the example is JSON");
    assert_eq!(example["Version"], "2012-10-17");
    assert!(example["Statement"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn the_cron_check_refuses_what_cron_refuses() {
    assert!(valid_cron("*/15 0-6,22 * 1-12 1"));
    assert!(!valid_cron("60 * * * *"));
    assert!(!valid_cron("* * * *"));
    assert!(!valid_cron("0 0 0 * *"));
}
