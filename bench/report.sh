#!/usr/bin/env bash
# Wall time of `beacon report` over 1 h at 15 s resolution for 50 pods (aim: under 1 s),
# against a real Prometheus loaded by promtool backfill. Needs prometheus (Debian package).
# The measuring code is crates/beacon/tests/report/bench.rs (an ignored test, so it shares
# the functional tests' fixture cluster); it prints min/median/max per output format.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet -p beacon --test report -- bench:: --ignored --nocapture --test-threads=1
