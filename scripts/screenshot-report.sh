#!/usr/bin/env bash
# Render a pvmmu HTML report in headless Chromium (Debian's `chromium` package)
# and write a PNG screenshot, to check by eye that the page renders.
#   scripts/screenshot-report.sh REPORT.html OUT.png
set -euo pipefail
html=$(realpath "$1"); out=${2:-${1%.html}.png}
ud=$(mktemp -d)
trap 'rm -rf "$ud"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$ud" --window-size=1100,2600 --screenshot="$out" "file://$html" 2>/dev/null
echo "wrote $out"
