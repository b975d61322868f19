#!/usr/bin/env bash
# Install what the headless-browser tests (tests/browser.py) need on Debian, as root:
# Debian's Chromium and a font for the text in screenshots and PDFs. Playwright
# itself comes from PyPI with the test extra; it drives this Chromium, so no
# `playwright install` (which downloads a browser and fails here) is ever run.
# Idempotent: does nothing when everything is already installed. Quiet unless it
# fails; then it prints apt's output and exits non-zero.
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core)

if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
    echo "browser-deps: must run as root (apt-get install ${PACKAGES[*]})" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    # A registry hiccup should not fail CI: up to 3 tries, then fail loudly.
    run_apt() {
        local try
        for try in 1 2 3; do
            if "$@" >>"$log" 2>&1; then
                return 0
            fi
            echo "browser-deps: '$*' failed (try $try of 3)" >>"$log"
            sleep $((try * 5))
        done
        echo "browser-deps: '$*' failed; its output:" >&2
        cat "$log" >&2
        exit 1
    }
    run_apt apt-get update -qq
    run_apt apt-get install -y -qq --no-install-recommends "${missing[@]}"
    echo "browser-deps: installed ${missing[*]}"
fi

# The harness runs the real binary behind Debian's /usr/bin/chromium wrapper.
chromium_bin=/usr/lib/chromium/chromium
[[ -x $chromium_bin ]] || chromium_bin=/usr/bin/chromium
if ! version="$("$chromium_bin" --version 2>/dev/null)"; then
    echo "browser-deps: $chromium_bin is installed but does not run" >&2
    exit 1
fi
echo "browser-deps: $version"
