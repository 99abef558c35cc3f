#!/usr/bin/env bash
# Removes the Sluice service. Keeps /var/lib/sluice (the data) and
# /etc/sluice (the configuration) unless --purge is given.
#
#   systemd/uninstall.sh [--purge]
#   DESTDIR=/tmp/root systemd/uninstall.sh [--purge]   (scratch root, no systemctl)
set -euo pipefail
destdir="${DESTDIR:-}"
purge=0
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  *) echo "uninstall.sh: unknown argument '$1'; use --purge to also delete data and config" >&2; exit 2 ;;
esac
if [ -z "$destdir" ] && command -v systemctl >/dev/null; then
  systemctl disable --now sluice.service 2>/dev/null || true
fi
rm -f "$destdir/usr/bin/sluice" \
      "$destdir/usr/lib/systemd/system/sluice.service" \
      "$destdir/usr/lib/sysusers.d/sluice.conf" \
      "$destdir/usr/lib/tmpfiles.d/sluice.conf"
rm -rf "$destdir/usr/share/doc/sluice"
if [ "$purge" = 1 ]; then
  rm -rf "$destdir/var/lib/sluice" "$destdir/etc/sluice"
  echo "removed sluice, its data and its configuration"
else
  echo "removed sluice; kept $destdir/var/lib/sluice and $destdir/etc/sluice (use --purge to delete them)"
fi
if [ -z "$destdir" ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload || true
fi
