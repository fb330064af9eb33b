#!/usr/bin/env bash
# Runs rrdev's benchmarks: `bench/run.sh [all|load|micro|setup] [--peers] [--quick] ...`
# (the same arguments as `python -m bench`; see bench/README.md). Uses $PYTHON if set,
# else the project's .venv, else python3; rrdev is imported from this checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
cd "$root"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m bench "$@"
