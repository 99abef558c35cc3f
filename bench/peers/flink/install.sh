#!/usr/bin/env bash
# Installs Apache Flink (the `apache-flink` Python package ships the Flink distribution:
# JobManager, TaskManager, the SQL planner and the filesystem/json/blackhole connectors)
# into a virtual environment under $SLUICE_PEERS_HOME (default $HOME/.cache/sluice-peers).
#
# Idempotent: a second run with the venv in place only checks it.
# Needs: python3 (3.8-3.11 for Flink 1.20) with venv, Java 11 or 17 on PATH or JAVA_HOME.
set -euo pipefail

FLINK_VERSION="${FLINK_VERSION:-1.20.3}"
PEERS_HOME="${SLUICE_PEERS_HOME:-$HOME/.cache/sluice-peers}"
VENV="$PEERS_HOME/flink-$FLINK_VERSION"
PYTHON="${PYTHON:-python3}"

die() { echo "install.sh: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH; install Python 3.8-3.11 or set PYTHON=/path/to/python3.11"
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$pyver" in
  3.8|3.9|3.10|3.11) ;;
  *) die "Flink $FLINK_VERSION supports Python 3.8-3.11, found $pyver; set PYTHON=/path/to/python3.11" ;;
esac
if [ -n "${JAVA_HOME:-}" ]; then java="$JAVA_HOME/bin/java"; else java="$(command -v java || true)"; fi
[ -n "$java" ] && [ -x "$java" ] || die "no java found; install a JDK 11 or 17 (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
jver="$("$java" -version 2>&1 | head -1)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv $VENV"
  mkdir -p "$PEERS_HOME"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import pyflink" 2>/dev/null; then
  echo "installing apache-flink==$FLINK_VERSION (downloads ~500 MB the first time)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "apache-flink==$FLINK_VERSION"
fi
installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-flink"))')"
[ "$installed" = "$FLINK_VERSION" ] || die "venv $VENV holds apache-flink $installed, expected $FLINK_VERSION; remove the venv and re-run"
echo "apache-flink $installed ready in $VENV ($jver)"
