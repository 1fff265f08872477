#!/usr/bin/env bash
# What the dashboard's browser test (tests/e2e_dashboard.rs) needs: Debian's
# `chromium`, driven headless over the DevTools protocol
# (tests/support/src/browser.rs). Installs it with apt-get when run as root
# on Debian/Ubuntu, otherwise says what to install and fails: `make test`
# never skips the browser test.
set -euo pipefail

missing=()
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
# A font, or the screenshot (docs/dashboard.png) shows boxes instead of text.
[ -d /usr/share/fonts/truetype/liberation ] || missing+=(fonts-liberation)

if [ ${#missing[@]} -eq 0 ]; then
    echo "tests/browser/install.sh: chromium and a font are installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "tests/browser/install.sh: missing ${missing[*]}; install them (Debian/Ubuntu:" \
        "sudo apt-get install -y ${missing[*]}) and run make again" >&2
    exit 1
fi
echo "tests/browser/install.sh: installing ${missing[*]} with apt-get (for tests/e2e_dashboard.rs)"
export DEBIAN_FRONTEND=noninteractive
# No recommends: a headless browser needs no sandbox helper, printer or desktop tools.
# A stale package index is the usual reason for a failed install: refresh once.
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}" || {
        echo "tests/browser/install.sh: apt-get install ${missing[*]} failed" >&2
        exit 1
    }
fi
