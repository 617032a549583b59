//! The emulator's additions to moto (Security Lake, SageMaker operations, test behaviour),
//! checked through boto3 against a private emulator.

mod support;

use std::process::Command;

use support::{Emulator, Run, repo};

#[test]
fn emulator_additions_behave_as_documented() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: AWS_ENDPOINT_URL points at another emulator");
        return;
    }
    let run = Run::of(
        Command::new(repo().join("localstack/.venv/bin/python"))
            .arg(repo().join("localstack/selftest.py"))
            .arg(&emu.endpoint)
            // The SageMaker checks train and score with this build's engine, as the emulator does.
            .env("LAKESIGHT_BIN", support::binary()),
    );
    run.expect_code(0);
    assert!(run.stderr.contains("\nOK"), "{}", run.stderr);
}
