#!/usr/bin/env bash
# Removes the Sluice service and its files. Keeps the data (/var/lib/sluice)
# and the configuration (/etc/sluice) unless --purge is given.
#
#   systemd/uninstall.sh            stop, disable, remove binary, unit and docs
#   systemd/uninstall.sh --purge    also delete /var/lib/sluice and /etc/sluice
#   DESTDIR=/tmp/root systemd/uninstall.sh [--purge]
#                                   the same inside a scratch root (no systemctl)
#
# The `sluice` user stays (removing it could hand its uid to another account
# while files it owned remain); `userdel sluice` removes it.
set -euo pipefail
destdir="${DESTDIR:-}"
purge=0

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --purge) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uninstall.sh: unknown argument '$1'; use --purge to also delete data and configuration" >&2
       exit 2 ;;
  esac
done

if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
  echo "uninstall.sh: run as root (or use DESTDIR=<dir> for a scratch root)" >&2
  exit 1
fi

live=0
if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  live=1
  # Stopping writes every job's final checkpoint.
  systemctl disable --now sluice.service 2>/dev/null || true
fi
rm -f "$destdir/usr/bin/sluice" \
      "$destdir/usr/lib/systemd/system/sluice.service" \
      "$destdir/usr/lib/sysusers.d/sluice.conf" \
      "$destdir/usr/lib/tmpfiles.d/sluice.conf"
rm -rf "$destdir/usr/share/sluice" "$destdir/usr/share/doc/sluice"
if [ "$live" = 1 ]; then
  systemctl daemon-reload || true
fi
if [ "$purge" = 1 ]; then
  rm -rf "$destdir/var/lib/sluice" "$destdir/etc/sluice"
  echo "removed sluice, its data and its configuration"
else
  echo "removed sluice; kept $destdir/var/lib/sluice (data) and $destdir/etc/sluice (configuration);"
  echo "uninstall.sh --purge deletes them"
fi
