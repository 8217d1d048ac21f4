#!/usr/bin/env bash
# Wall time of `beacon report` over 1 h at 15 s resolution for 50 pods (aim: under 1 s),
# against a real Prometheus loaded by promtool backfill. Needs prometheus (Debian package).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release -p beacon --test report_bench -- --ignored --nocapture --test-threads=1 2>&1 \
  | grep -E '^(backfill|beacon report|test result|thread|  )'
