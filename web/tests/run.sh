#!/usr/bin/env bash
# The web client's browser tests (CTest label "web"): type-check the page (tsc on the JSDoc
# types of web/js/), test its client state machine alone (node --test client.test.mjs), then
# Playwright drives Debian's Chromium headless against a real chatd.
#
#   web/tests/run.sh CHATD_BIN HISTORY_CHECK_BIN OUT_DIR
#
# Needs web/tests/node_modules (scripts/install-deps.sh runs `npm ci` here) and Chromium. Without
# them it exits 77, which CTest reports as skipped, naming what is missing; under CI (CI set)
# it fails instead: CI must run these tests. Artefacts (screenshots, the recorded histories,
# traces of failures) go to OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")"
chromium="${CHROMIUM:-/usr/bin/chromium}"

missing=""
[ -x node_modules/.bin/playwright ] && [ -x node_modules/.bin/tsc ] ||
  missing="npm packages (cd web/tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci)"
[ -x "$chromium" ] || missing="${missing:+$missing and }Chromium ($chromium: apt-get install chromium)"
if [ -n "$missing" ]; then
  if [ -n "${CI:-}" ]; then
    echo "web tests: missing $missing; scripts/install-deps.sh installs them" >&2
    exit 1
  fi
  echo "SKIPPED: the web client's browser tests need $missing; scripts/install-deps.sh installs them"
  exit 77
fi

mkdir -p "$3"
node_modules/.bin/tsc -p tsconfig.json
echo "tsc: web/js type-checks"
node --test client.test.mjs  # the client state machine alone, no browser
CHATD_BIN="$1" HISTORY_CHECK_BIN="$2" WEB_TEST_OUT="$3" CHROMIUM="$chromium" \
  node_modules/.bin/playwright test
