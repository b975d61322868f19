#!/usr/bin/env bash
# Make sure the headless-browser tests (tests/browser.py) have a browser: a Chromium
# or Chrome that runs, and (nice to have) Debian's font for the text in screenshots.
#
# 1. A usable browser (one that answers --version) is looked for first, in the order
#    tests/browser.py uses: $CALAUDIT_CHROMIUM alone when it is set; else the
#    candidates below, then Playwright's own download in its cache. When one is
#    found nothing needs privileges: it prints which one and exits 0. A missing
#    fonts-dejavu-core is installed only when that needs no prompt (root, or sudo
#    without a password); otherwise a one-line note is printed, and the exit is 0.
# 2. None found, with apt-get (Debian/Ubuntu): installs chromium and the font, as
#    root directly, else through `sudo -n`. When sudo wants a password, plain sudo is
#    run only if stdin is a terminal; otherwise it prints the command and exits 1.
# 3. None found and no apt-get (macOS, other distributions): exits 1 with one line
#    saying how to provide a browser.
# Playwright comes from PyPI with the test extra and drives the browser found here,
# so `playwright install` (a download) is needed only where no browser can be had.
# Idempotent; one line on success; apt's output only when apt fails. Runs on bash 3.2.
#
# Environment:
#   CALAUDIT_CHROMIUM            the browser to use (a path, or a name on PATH); when
#                                set it is the only one tried, as in tests/browser.py.
#   CALAUDIT_BROWSER_CANDIDATES  paths or names, colon-separated, that replace the
#                                built-in list below (Playwright's cache is still
#                                searched after them); tests/browser.py reads it too.
#                                A seam for tests/test_browser_deps.py.
#   PLAYWRIGHT_BROWSERS_PATH     Playwright's own: where its browsers are (default
#                                $XDG_CACHE_HOME or ~/.cache, on macOS ~/Library/Caches,
#                                then /ms-playwright).
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core)
FONT_PACKAGE=fonts-dejavu-core
# Keep in step with CHROMIUM_CANDIDATES in tests/browser.py. Debian's /usr/bin/chromium
# is a wrapper script; the real binary behind it comes first.
DEFAULT_CANDIDATES="/usr/lib/chromium/chromium:/usr/bin/chromium:chromium:chromium-browser"
DEFAULT_CANDIDATES+=":google-chrome:google-chrome-stable"
DEFAULT_CANDIDATES+=":/Applications/Chromium.app/Contents/MacOS/Chromium"
DEFAULT_CANDIDATES+=":/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"
PLAYWRIGHT_HINT=".venv/bin/python -m playwright install chromium"

browser="" browser_version=""

# Sets $browser and $browser_version when "$1" (a path or a name on PATH) is an
# executable file that answers --version.
try_browser() {
    local exe version
    exe="$(command -v -- "$1" 2>/dev/null)" || return 1
    [[ -f $exe && -x $exe ]] || return 1
    version="$("$exe" --version </dev/null 2>/dev/null)" || return 1
    version="${version%%$'\n'*}"
    browser="$exe" browser_version="${version%"${version##*[![:space:]]}"}"
}

# Playwright's downloads (`python -m playwright install chromium`), newest first:
# revisions have the same number of digits, so reverse name order is newest first.
try_playwright_cache() {
    local root="${PLAYWRIGHT_BROWSERS_PATH:-}" found exe n=0 i
    if [[ -z $root ]]; then
        if [[ $OSTYPE == darwin* ]]; then
            root="$HOME/Library/Caches/ms-playwright"
        else
            root="${XDG_CACHE_HOME:-$HOME/.cache}/ms-playwright"
        fi
    fi
    [[ $root != 0 && -d $root ]] || return 1  # 0: inside the Python package; not searched
    for exe in "$root"/chromium-*/chrome-linux*/chrome \
        "$root"/chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium \
        "$root"/chromium-*/chrome-mac*/"Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing"; do
        [[ -f $exe ]] || continue  # an unmatched pattern stays as it is
        found[n]="$exe"
        n=$((n + 1))
    done
    for ((i = n - 1; i >= 0; i--)); do
        try_browser "${found[i]}" && return 0
    done
    return 1
}

find_browser() {
    local candidates candidate
    if [[ -n ${CALAUDIT_CHROMIUM:-} ]]; then
        try_browser "$CALAUDIT_CHROMIUM"
        return
    fi
    IFS=: read -r -a candidates <<<"${CALAUDIT_BROWSER_CANDIDATES:-$DEFAULT_CANDIDATES}"
    for candidate in ${candidates[@]+"${candidates[@]}"}; do
        [[ -n $candidate ]] && try_browser "$candidate" && return 0
    done
    try_playwright_cache
}

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# How to become root: sets $SUDO to the prefix ("" as root). "$1" is "prompt" when
# a password may be asked for (only with a terminal on stdin), "quiet" when not.
SUDO=()
get_root() {
    if [[ "$(id -u)" == 0 ]]; then
        SUDO=()
    elif ! command -v sudo >/dev/null 2>&1; then
        return 1
    elif sudo -n true >/dev/null 2>&1; then
        SUDO=(sudo -n)
    elif [[ $1 == prompt && -t 0 ]] && sudo -v; then
        SUDO=(sudo)
    else
        return 1
    fi
}

log=""
cleanup() { [[ -z $log ]] || rm -f "$log"; }
trap cleanup EXIT

# A registry hiccup should not fail CI: up to 3 tries. Returns 1 when all failed,
# with apt's output in $log.
run_apt() {
    local try
    for try in 1 2 3; do
        # env: sudo drops DEBIAN_FRONTEND from the environment.
        if ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive "$@" >>"$log" 2>&1; then
            return 0
        fi
        echo "browser-deps: '$*' failed (try $try of 3)" >>"$log"
        [[ $try == 3 ]] || sleep $((try * 5))
    done
    return 1
}

# Installs the packages named, through $SUDO; 1 when apt failed.
apt_install() {
    [[ -n $log ]] || log="$(mktemp)"
    run_apt apt-get update -qq &&
        run_apt apt-get install -y -qq --no-install-recommends "$@"
}

if find_browser; then
    note=""
    if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 &&
        ! is_installed "$FONT_PACKAGE"; then
        if get_root quiet && apt_install "$FONT_PACKAGE"; then
            note="; installed $FONT_PACKAGE"
        else
            echo "browser-deps: note: $FONT_PACKAGE is not installed (optional: text in" \
                "screenshots uses another font); to add it: sudo apt-get install -y $FONT_PACKAGE" >&2
        fi
    fi
    echo "browser-deps: using $browser ($browser_version)$note"
    exit 0
fi

if [[ -n ${CALAUDIT_CHROMIUM:-} ]]; then
    echo "browser-deps: CALAUDIT_CHROMIUM=$CALAUDIT_CHROMIUM is not an executable that" \
        "answers --version; point it at a Chrome/Chromium executable, or unset it" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser-deps: no Chromium or Chrome found and no apt-get here: point" \
        "CALAUDIT_CHROMIUM at a Chrome/Chromium executable, or run \`$PLAYWRIGHT_HINT\`" \
        "(Playwright's own download, which the tests then find in its cache) and run this again" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
install_command="apt-get install -y --no-install-recommends ${PACKAGES[*]}"

if ((${#missing[@]})); then
    if ! get_root prompt; then
        if ! command -v sudo >/dev/null 2>&1; then
            how="there is no sudo; as root run: apt-get update && $install_command"
        elif [[ -t 0 ]]; then
            how="sudo refused; as root run: apt-get update && $install_command"
        else
            how="sudo wants a password and stdin is not a terminal; run:"
            how+=" sudo apt-get update && sudo $install_command"
        fi
        echo "browser-deps: no Chromium found; installing it needs root and $how" \
            "(or point CALAUDIT_CHROMIUM at a Chrome/Chromium executable)" >&2
        exit 1
    fi
    if ! apt_install "${missing[@]}"; then
        echo "browser-deps: installing ${missing[*]} failed; apt's output:" >&2
        cat "$log" >&2
        exit 1
    fi
fi

if ! find_browser; then
    echo "browser-deps: ${PACKAGES[0]} is installed but no Chromium answers --version" \
        "(tried ${CALAUDIT_BROWSER_CANDIDATES:-$DEFAULT_CANDIDATES})" >&2
    exit 1
fi
if ((${#missing[@]})); then
    echo "browser-deps: installed ${missing[*]}; using $browser ($browser_version)"
else
    echo "browser-deps: using $browser ($browser_version)"
fi
