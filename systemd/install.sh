#!/usr/bin/env bash
# Installs Sluice as a systemd service.
#
#   systemd/install.sh                  build a release binary, install, enable, start
#   systemd/install.sh --binary PATH    install that binary instead of building
#   DESTDIR=/tmp/root systemd/install.sh --binary PATH
#                                       stage into a scratch root (no systemctl)
#
# The configuration in /etc/sluice/sluice.toml is never overwritten.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
destdir="${DESTDIR:-}"
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  echo "building release binary (cargo build --release -p sluice)"
  (cd "$root" && cargo build --release -p sluice)
  binary="${CARGO_TARGET_DIR:-$root/target}/release/sluice"
fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

install -D -m 0755 "$binary" "$destdir/usr/bin/sluice"
install -D -m 0644 "$here/sluice.service" "$destdir/usr/lib/systemd/system/sluice.service"
install -D -m 0644 "$here/sluice.sysusers" "$destdir/usr/lib/sysusers.d/sluice.conf"
install -D -m 0644 "$here/sluice.tmpfiles" "$destdir/usr/lib/tmpfiles.d/sluice.conf"
if [ -e "$destdir/etc/sluice/sluice.toml" ]; then
  echo "keeping existing $destdir/etc/sluice/sluice.toml"
else
  install -D -m 0640 "$here/sluice.toml" "$destdir/etc/sluice/sluice.toml"
fi
for doc in operations.md configuration.md; do
  [ -f "$root/docs/$doc" ] && install -D -m 0644 "$root/docs/$doc" "$destdir/usr/share/doc/sluice/$doc"
done

if [ -n "$destdir" ]; then
  echo "staged into $destdir (no users created, nothing started)"
  exit 0
fi
systemd-sysusers /usr/lib/sysusers.d/sluice.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/sluice.conf
chgrp sluice /etc/sluice/sluice.toml
systemctl daemon-reload
systemctl enable --now sluice.service
echo "sluice is running: systemctl status sluice; dashboard at http://127.0.0.1:7070/"
