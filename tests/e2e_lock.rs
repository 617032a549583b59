//! The stack's lock and run ledger, end to end: the real binary against the emulator, whose S3
//! conditional writes are atomic as S3's are. Stacks here have only their artifact bucket, so
//! each apply takes well under a second.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Emulator, manifest};

const BUCKET: &str = "lakesight-lockstep-123456789012-us-east-1";
const LOCK: &str = "stacks/lockstep/lock.json";

fn lock_json(id: &str, pid: u32) -> String {
    format!(
        r#"{{"id": "{id}", "user": "ghost", "host": "gone-runner", "pid": {pid}, "command": "lakesight apply",
            "caller": "arn:aws:iam::123456789012:user/ghost", "acquiredAt": "2030-01-01T00:00:00Z",
            "expiresAt": "2099-01-01T00:00:00Z"}}"#
    )
}

#[tokio::test]
async fn a_second_apply_waits_for_the_first_or_fails_at_once_naming_it_and_history_lists_both_newest_first() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: holding an answer needs the bundled emulator");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "lockstep", "");
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);

    // How many calls an apply with nothing to change makes; its last two are the ledger record
    // and the lock's release.
    emu.configure("{}");
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let calls = emu.faults()["calls"].as_u64().expect("calls");

    // The first apply holds the lock while its ledger write is held in the emulator.
    emu.configure(&format!(r#"{{"holdAtCall": {}}}"#, calls - 1));
    let mut first = emu.spawn(&["apply", "--auto-approve"], &file);
    let started = Instant::now();
    while emu.faults()["held"] != true {
        assert!(started.elapsed() < Duration::from_secs(30), "the first apply never reached its ledger write");
        std::thread::sleep(Duration::from_millis(100));
    }

    let at_once = emu.run(&["apply", "--auto-approve", "--lock-timeout", "0"], &file);
    at_once.expect_code(75);
    let holder = format!("pid {}, lakesight apply", first.id());
    assert!(at_once.stderr.contains(&holder), "names the holder ({holder}):\n{}", at_once.stderr);
    assert!(!at_once.stdout.contains("Plan:"), "it planned nothing:\n{}", at_once.stdout);

    let waiter = emu
        .lakesight()
        .args(["apply", "--auto-approve", "--lock-timeout", "2m", "-f"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the waiting apply");
    std::thread::sleep(Duration::from_secs(3));
    emu.configure(r#"{"holdAtCall": null}"#); // lets the first apply finish and release
    assert!(first.wait().expect("first apply").success());
    let waited = waiter.wait_with_output().expect("waiting apply");
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert_eq!(waited.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("waiting up to 2m for the stack's lock, held by"), "{stderr}");
    assert!(stderr.contains(&holder), "{stderr}");

    let history = emu.run(&["history", "--output", "json"], &file);
    history.expect_code(0);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(runs.len(), 4, "the refused apply took no lock and left no record:\n{}", history.stdout);
    let started: Vec<&str> = runs.iter().map(|r| r["startedAt"].as_str().expect("startedAt")).collect();
    assert!(started.windows(2).all(|w| w[0] > w[1]), "newest first: {started:?}");
    assert_eq!(runs[3]["plan"]["create"], 1, "the first apply created the bucket");
    assert!(runs.iter().all(|r| r["command"] == "apply" && r["exit"]["code"] == 0));
    let bucket = &runs[3]["nodes"][0];
    assert_eq!((bucket["address"].as_str(), bucket["planned"].as_str()), (Some("s3.bucket/artifacts"), Some("create")));

    let newest = emu.run(&["history", "--output", "json", "--limit", "1"], &file);
    let newest: Vec<serde_json::Value> = serde_json::from_str(&newest.stdout).expect("history JSON");
    assert_eq!(newest, runs[..1]);
    let table = emu.run(&["history"], &file);
    assert_eq!(table.stdout.lines().count(), 5, "a header and four runs:\n{}", table.stdout);
    assert!(emu.s3().await.get_object().bucket(BUCKET).key(LOCK).send().await.is_err(), "released");
}

#[tokio::test]
async fn force_unlock_removes_a_dead_runs_lock_and_only_the_one_named() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "lockstep", "");
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let s3 = emu.s3().await;
    s3.put_object()
        .bucket(BUCKET)
        .key(LOCK)
        .body(lock_json("deadbeefdeadbeef", 31337).into_bytes().into())
        .send()
        .await
        .expect("plant a dead run's lock");

    let refused = emu.run(&["apply", "--auto-approve", "--lock-timeout", "0"], &file);
    refused.expect_code(75);
    assert!(refused.stderr.contains("ghost@gone-runner (pid 31337"), "{}", refused.stderr);
    assert!(refused.stderr.contains("lock id deadbeefdeadbeef"), "{}", refused.stderr);

    emu.run(&["force-unlock"], &file).expect_code(64);
    let other = emu.run(&["force-unlock", "--auto-approve", "--lock-id", "0000000000000000"], &file);
    other.expect_code(1);
    assert!(other.stderr.contains("not by lock id 0000000000000000"), "{}", other.stderr);
    assert!(s3.get_object().bucket(BUCKET).key(LOCK).send().await.is_ok(), "a lock not named stays");

    emu.run(&["force-unlock", "--auto-approve", "--lock-id", "deadbeefdeadbeef"], &file).expect_code(0);
    assert!(s3.get_object().bucket(BUCKET).key(LOCK).send().await.is_err(), "removed");
    emu.run(&["force-unlock", "--auto-approve"], &file).expect_code(0);
    emu.run(&["apply", "--auto-approve", "--lock-timeout", "0"], &file).expect_code(0);
}
