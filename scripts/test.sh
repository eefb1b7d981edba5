#!/usr/bin/env bash
# Runs every test: unit, integration (real nats-server) and end to end (real incusd members).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec npm test
