# The commands of the README. Both install what they need on a fresh machine.

.PHONY: quickstart test bench eval

# Builds the scorer package and applies manifests/quickstart.yaml against the bundled emulator:
# the first apply makes the lake and waits for data, a synthetic lake of 13 days (10,000 flows a
# day) is written into it, and the second apply runs the feature SQL over it, trains and deploys.
# Then the status, and the last day arrives with its planted anomalies: the deployed function
# scores the new objects from the subscriber's queue, and the report holds its findings against
# the ground truth. The last day is pinned once, so that both writes agree however long the run.
# The emulator keeps running for further commands; stop it with localstack/down.
quickstart:
	./scorer/package x86_64 >/dev/null
	cargo build --quiet
	./localstack/up >/dev/null
	eval "$$(./localstack/env)" && day=$$(date -u +%Y%m%d) && \
	  ./target/debug/lakesight apply -f manifests/quickstart.yaml --auto-approve && \
	  ./target/debug/lakesight-data --days 14 --seed 7 --flows-per-day 10000 --last-day $$day --part history && \
	  ./target/debug/lakesight apply -f manifests/quickstart.yaml --auto-approve && \
	  ./target/debug/lakesight status -f manifests/quickstart.yaml && \
	  ./target/debug/lakesight-data --days 14 --seed 7 --flows-per-day 10000 --last-day $$day --part last-day && \
	  ./target/debug/lakesight-data report --manifest manifests/quickstart.yaml

# Every test: unit, engine, CLI and end-to-end (each end-to-end test starts and stops its own
# emulator), after building the scorer's Lambda package the way a release does.
test:
	./localstack/install
	./scorer/package x86_64
	cargo test --all-targets

# The scorer's figures: records and MB per second, peak memory and requests per million records,
# projected read against a full-column read of the same generated files. Then the IP Insights
# engine's: training samples and scored pairs per second and peak memory at 10^5 and 10^6 pairs,
# beside a plain one-sample-at-a-time reference loop (a few minutes). Neither build includes the
# control plane's SDK crates, which would add most of 20 minutes to a release build.
bench:
	cargo bench --no-default-features --features scorer,synthetic --bench scorer
	cargo bench --no-default-features --features ipinsights,synthetic --bench ipinsights_speed

# The IP Insights engine's quality on the quickstart's synthetic lake, for source and remote pairs:
# validation AUC, TPR at 1% FPR, and the planted anomalies found and normal pairs flagged at the
# quickstart's threshold. It reads the lake from the quickstart target's lakesight-data lines above and
# the split, hyperparameters and threshold from manifests/quickstart.yaml.
eval:
	cargo bench --no-default-features --features ipinsights,synthetic --bench ipinsights_quality
