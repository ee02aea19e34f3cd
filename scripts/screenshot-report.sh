#!/usr/bin/env bash
# Render a pvmmu HTML report in headless Chromium (Debian's `chromium` package)
# and write a PNG screenshot, to check by eye that the page renders.
#   scripts/screenshot-report.sh REPORT.html [OUT.png] [WIDTH,HEIGHT]
# docs/report-screenshot.png (in the README) was made with:
#   pvmmu compare tools/workloads/default.pvw --trace default.json
#   pvmmu report default.native.json default.xen.json -o /tmp/r.html
#   scripts/screenshot-report.sh /tmp/r.html docs/report-screenshot.png 1400,1180
set -euo pipefail
html=$(realpath "$1"); out=${2:-${1%.html}.png}; size=${3:-1400,3000}
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 2; }
ud=$(mktemp -d)
trap 'rm -rf "$ud"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$ud" --window-size="$size" --screenshot="$out" "file://$html" 2>/dev/null
echo "wrote $out"
