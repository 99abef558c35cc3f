#!/usr/bin/env bash
# Installs (or upgrades) Sluice as a systemd service.
#
#   systemd/install.sh                   build a release binary, install, enable, start
#   systemd/install.sh --binary PATH     install that binary instead of building
#   systemd/install.sh --no-start        install and enable, but do not start
#   DESTDIR=/tmp/root systemd/install.sh --binary PATH
#                                        stage the files into a scratch root only
#                                        (no user created, nothing enabled)
#
# Files: /usr/bin/sluice, /usr/lib/systemd/system/sluice.service,
# /usr/lib/sysusers.d/sluice.conf, /usr/lib/tmpfiles.d/sluice.conf,
# /etc/sluice/sluice.toml (never overwritten; the shipped default is also kept
# at /usr/share/sluice/sluice.toml for comparison), docs in
# /usr/share/doc/sluice. An upgrade of a running service restarts it: the
# jobs stop with final checkpoints and resume from them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
destdir="${DESTDIR:-}"
binary=""
start=1

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary)
      [ $# -ge 2 ] || die "--binary needs the path of a built sluice binary"
      binary="$2"; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
  die "run as root (or stage with DESTDIR=<dir> to install elsewhere)"
fi

if [ -z "$binary" ]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust, or pass --binary PATH"
  echo "building the release binary (cargo build --release -p sluice)"
  (cd "$root" && cargo build --release --locked -p sluice)
  binary="${CARGO_TARGET_DIR:-$root/target}/release/sluice"
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
  die "$binary is not an executable file"
fi
"$binary" --version >/dev/null 2>&1 || die "$binary does not run here (sluice --version failed)"

# The binary goes in under a temporary name and is renamed over the old
# one, so a running service never sees a half-written file.
install -d -m 0755 "$destdir/usr/bin"
install -m 0755 "$binary" "$destdir/usr/bin/.sluice.new"
mv -f "$destdir/usr/bin/.sluice.new" "$destdir/usr/bin/sluice"
install -D -m 0644 "$here/sluice.service" "$destdir/usr/lib/systemd/system/sluice.service"
install -D -m 0644 "$here/sluice.sysusers" "$destdir/usr/lib/sysusers.d/sluice.conf"
install -D -m 0644 "$here/sluice.tmpfiles" "$destdir/usr/lib/tmpfiles.d/sluice.conf"
install -D -m 0644 "$here/sluice.toml" "$destdir/usr/share/sluice/sluice.toml"
install -d -m 0755 "$destdir/etc/sluice"
if [ -e "$destdir/etc/sluice/sluice.toml" ]; then
  echo "keeping $destdir/etc/sluice/sluice.toml (the new default is /usr/share/sluice/sluice.toml)"
else
  # Holds tokens: readable by root and the service's group only.
  install -m 0640 "$here/sluice.toml" "$destdir/etc/sluice/sluice.toml"
fi
for doc in operations.md configuration.md grafana-dashboard.json prometheus-alerts.yml; do
  if [ -f "$root/docs/$doc" ]; then
    install -D -m 0644 "$root/docs/$doc" "$destdir/usr/share/doc/sluice/$doc"
  fi
done

if [ -n "$destdir" ]; then
  echo "staged into $destdir (no user created, nothing enabled or started)"
  exit 0
fi

systemd-sysusers /usr/lib/sysusers.d/sluice.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/sluice.conf
chgrp sluice /etc/sluice/sluice.toml
chmod 0640 /etc/sluice/sluice.toml

if [ ! -d /run/systemd/system ]; then
  echo "installed; systemd is not running on this machine, so nothing was enabled."
  echo "run it by hand: sudo -u sluice /usr/bin/sluice serve --config /etc/sluice/sluice.toml"
  exit 0
fi
systemctl daemon-reload
if systemctl is-active --quiet sluice.service; then
  echo "upgrading the running service: final checkpoints, then restart"
  systemctl restart sluice.service
elif [ "$start" = 1 ]; then
  systemctl enable --now sluice.service
else
  systemctl enable sluice.service
  echo "enabled, not started: systemctl start sluice"
  exit 0
fi
echo "sluice is running: systemctl status sluice; journalctl -u sluice -f"
echo "dashboard and API: $(sed -n 's/^listen *= *"\(.*\)"/http:\/\/\1\//p' /etc/sluice/sluice.toml | head -n1)"
