#!/usr/bin/env bash
# Open a tracestyle report in headless Chromium and save a screenshot: proves the page renders standalone.
# usage: scripts/report_screenshot.sh RUN_DIR/report.html OUT.png
set -euo pipefail
html=$(realpath "$1"); out=$(realpath -m "$2")
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium found (apt-get install chromium)" >&2; exit 3; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# flags: no sandbox as root, no network chatter on a closed machine, a throwaway profile
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1200,2400 --screenshot="$out" "file://$html" >/dev/null 2>&1
[ -s "$out" ] && echo "$out"
