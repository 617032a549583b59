# The two commands of the README. Both install what they need on a fresh machine.

.PHONY: quickstart test

# Applies manifests/quickstart.yaml against the bundled emulator and shows the status.
# The emulator keeps running for further commands; stop it with localstack/down.
quickstart:
	cargo build --quiet
	./localstack/up >/dev/null
	eval "$$(./localstack/env)" && \
	  ./target/debug/lakesight apply -f manifests/quickstart.yaml --auto-approve && \
	  ./target/debug/lakesight status -f manifests/quickstart.yaml

# Every test: unit, engine, CLI and end-to-end (each end-to-end test starts and stops its own emulator).
test:
	./localstack/install
	cargo test --all-targets
