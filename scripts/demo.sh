#!/usr/bin/env bash
# Quick start: a real cluster formed by real agents, then cleaned up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec node dist/lab/demo.js "$@"
