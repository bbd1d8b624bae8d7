#!/usr/bin/env bash
# The status page's tests in a real browser: Debian's chromium driven by
# chromedp (reconcile/loop/ui/browser_test.go).
#
#   bash .ci/browser-tests.sh install   install chromium if it is missing
#   bash .ci/browser-tests.sh [DIR]     install it, then run the browser tests,
#                                       saving a screenshot of every page in DIR
#                                       (default: a new folder under /tmp)
#
# With PANDASYNC_REQUIRE_BROWSER=1 (set here) the tests fail instead of
# skipping when chromium is absent, so a missing install cannot pass as green.
# Each step prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
if ! command -v chromium >/dev/null 2>&1; then
	echo "installing chromium"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq chromium >/dev/null
fi
echo "chromium: $(chromium --version 2>/dev/null | head -1) ($(($(date +%s) - t0)) s)"
[ "${1:-}" = install ] && exit 0

shots=${1:-$(mktemp -d /tmp/pandasync-screenshots.XXXXXX)}
mkdir -p "$shots"
t1=$(date +%s)
PANDASYNC_REQUIRE_BROWSER=1 PANDASYNC_SCREENSHOTS="$shots" \
	go test -count=1 -v -run 'TestBrowser' ./reconcile/loop/ui/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|screenshot|_test.go' || { echo "browser tests failed" >&2; exit 1; }
echo "browser tests: $(($(date +%s) - t1)) s; screenshots in $shots:"
ls -1 "$shots"
