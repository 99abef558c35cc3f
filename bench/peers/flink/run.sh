#!/usr/bin/env bash
# Runs the Nexmark queries in Apache Flink (local mode) with the venv made by install.sh.
# Usage: run.sh --input <ndjson file or dir> [--queries q0,q5] [--parallelism N]
#               [--repetitions R] [--warmup W] [--events N] [--no-count] [--out results.jsonl]
# Prints one JSON object per timed run on stdout; see nexmark_flink.py for what is measured.
set -euo pipefail

FLINK_VERSION="${FLINK_VERSION:-1.20.3}"
PEERS_HOME="${SLUICE_PEERS_HOME:-$HOME/.cache/sluice-peers}"
VENV="$PEERS_HOME/flink-$FLINK_VERSION"
HERE="$(cd "$(dirname "$0")" && pwd)"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pyflink" 2>/dev/null; then
  echo "run.sh: Apache Flink $FLINK_VERSION is not installed (no venv with pyflink at $VENV)." >&2
  echo "run.sh: install it with bench/peers/flink/install.sh (needs Python 3.8-3.11 and Java 11/17; downloads ~500 MB once)." >&2
  exit 3
fi
if [ -z "${JAVA_HOME:-}" ] && ! command -v java >/dev/null 2>&1; then
  echo "run.sh: no java on PATH and JAVA_HOME is unset; Flink needs a JDK 11 or 17." >&2
  exit 3
fi
exec "$VENV/bin/python" "$HERE/nexmark_flink.py" "$@"
