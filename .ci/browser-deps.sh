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
#    root directly, else through `sudo -n`; when sudo wants a password and stdin is
#    a terminal, through plain sudo (which asks for it).
# 3. None found and no way to root (no sudo, a sudo that wants a password with no
#    terminal, or a refused one), or no apt-get at all (macOS, other distributions):
#    Playwright's own per-user download, `python -m playwright install chromium`
#    (no root; into PLAYWRIGHT_BROWSERS_PATH or its default cache, where step 1 and
#    tests/browser.py find it). The Python is $CALAUDIT_PYTHON, else the repository's
#    .venv/bin/python, else python3, and must import playwright.
# 4. When that fails too (no Python with Playwright, no network to Playwright's CDN,
#    a download that does not start): one line naming the three ways to get a
#    browser (apt as root, CALAUDIT_CHROMIUM, Playwright's download), and exit 1.
# Playwright comes from PyPI with the test extra and drives the browser found here.
# Idempotent; one line on stdout on success (a download first says so on stderr, as
# it takes a while); apt's output only when apt fails. Runs on bash 3.2.
#
# Environment:
#   CALAUDIT_CHROMIUM            the browser to use (a path, or a name on PATH); when
#                                set it is the only one tried, as in tests/browser.py.
#   CALAUDIT_PYTHON              the Python whose Playwright downloads a browser
#                                (default: .venv/bin/python in the repository, else
#                                python3).
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

# The repository: its .venv/bin/python is the default Python for Playwright's download.
case ${BASH_SOURCE[0]} in
*/*) script_dir=${BASH_SOURCE[0]%/*} ;;
*) script_dir=. ;;
esac
REPO="$(CDPATH='' cd -- "$script_dir/.." && pwd)"

# Where Playwright keeps its downloads ("0": inside its Python package, not searched).
PLAYWRIGHT_ROOT="${PLAYWRIGHT_BROWSERS_PATH:-}"
if [[ -z $PLAYWRIGHT_ROOT ]]; then
    if [[ $OSTYPE == darwin* ]]; then
        PLAYWRIGHT_ROOT="$HOME/Library/Caches/ms-playwright"
    else
        PLAYWRIGHT_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/ms-playwright"
    fi
fi

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

# Sets $playwright_chromiums to Playwright's downloaded Chromium executables
# (`python -m playwright install chromium`), newest first: revisions have the same
# number of digits, so reverse name order is newest first.
playwright_chromiums=()
list_playwright_cache() {
    local exe n=0 i found
    playwright_chromiums=()
    [[ $PLAYWRIGHT_ROOT != 0 && -d $PLAYWRIGHT_ROOT ]] || return 0
    for exe in "$PLAYWRIGHT_ROOT"/chromium-*/chrome-linux*/chrome \
        "$PLAYWRIGHT_ROOT"/chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium \
        "$PLAYWRIGHT_ROOT"/chromium-*/chrome-mac*/"Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing"; do
        [[ -f $exe ]] || continue  # an unmatched pattern stays as it is
        found[n]="$exe"
        n=$((n + 1))
    done
    for ((i = n - 1; i >= 0; i--)); do
        playwright_chromiums+=("${found[i]}")
    done
}

try_playwright_cache() {
    local exe
    list_playwright_cache
    for exe in ${playwright_chromiums[@]+"${playwright_chromiums[@]}"}; do
        try_browser "$exe" && return 0
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

# With a browser found: installs a missing font when that needs no prompt (and sets
# $note to say so), else prints a one-line note on stderr.
note=""
check_font() {
    if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 &&
        ! is_installed "$FONT_PACKAGE"; then
        if get_root quiet && apt_install "$FONT_PACKAGE"; then
            note="; installed $FONT_PACKAGE"
        else
            echo "browser-deps: note: $FONT_PACKAGE is not installed (optional: text in" \
                "screenshots uses another font); to add it: sudo apt-get install -y $FONT_PACKAGE" >&2
        fi
    fi
}

# "$1" as the user would type it from here: relative to the current folder when inside it.
shown() {
    local path="$1"
    [[ $path != "$PWD"/* ]] || path="${path#"$PWD"/}"
    printf '%s' "$path"
}

# The Python whose Playwright downloads a browser: sets $PYTHON; 1 when it does not
# run or cannot import playwright.
PYTHON=""
find_python() {
    if [[ -n ${CALAUDIT_PYTHON:-} ]]; then
        PYTHON="$CALAUDIT_PYTHON"
    elif [[ -x $REPO/.venv/bin/python ]]; then
        PYTHON="$REPO/.venv/bin/python"
    else
        PYTHON=python3
    fi
    command -v -- "$PYTHON" >/dev/null 2>&1 &&
        "$PYTHON" -c 'import playwright' </dev/null >/dev/null 2>&1
}

# The first line of "$1" (a file) that starts with "Error:", else its last non-blank
# line: why a download failed, in one line.
failure_reason() {
    local line reason="" last=""
    while IFS= read -r line || [[ -n $line ]]; do
        line="${line%$'\r'}"
        case $line in
        Error:*) reason="$line" && break ;;
        *[![:space:]]*) last="$line" ;;
        esac
    done <"$1"
    printf '%s' "${reason:-${last:-no output}}"
}

# Playwright's per-user download (no root). Sets $browser on success; else 1, with
# $download_result saying what happened, for the message that gives up.
download_result="" download=""
playwright_download() {
    local exe error python_ok=""
    if find_python; then
        python_ok=1
    fi
    download="$(shown "$PYTHON") -m playwright install chromium"
    if [[ $PLAYWRIGHT_ROOT == 0 ]]; then
        download_result="not tried: PLAYWRIGHT_BROWSERS_PATH=0 puts it inside the Python"
        download_result+=" package, where neither this script nor the tests look; unset it"
        return 1
    fi
    if [[ -z $python_ok ]]; then
        download_result="not tried: $(shown "$PYTHON") does not import playwright; install"
        download_result+=" the test extra first: pip install -e '.[test]'"
        return 1
    fi
    echo "browser-deps: no Chromium or Chrome found and $why; downloading Playwright's" \
        "Chromium for this user (no root needed): $download" >&2
    [[ -n $log ]] || log="$(mktemp)"
    if ! "$PYTHON" -m playwright install chromium </dev/null >"$log" 2>&1; then
        download_result="tried here, it failed: $(failure_reason "$log")"
        return 1
    fi
    find_browser && return 0
    list_playwright_cache
    if ((${#playwright_chromiums[@]} == 0)); then
        download_result="tried here: it finished, but no Chromium is in $PLAYWRIGHT_ROOT"
        return 1
    fi
    exe="${playwright_chromiums[0]}"
    error="$("$exe" --version </dev/null 2>&1 >/dev/null || true)"
    error="${error%%$'\n'*}"
    download_result="tried here: $exe does not start (${error:-no --version}); the system"
    download_result+=" libraries it needs come with root:"
    download_result+=" sudo $(shown "$PYTHON") -m playwright install-deps chromium"
    return 1
}

# No browser and no apt-get for it: Playwright's download, else one line that names
# every way to get a browser, and exit 1. $why says why apt-get was no help; $way1
# how to get a browser with the system's packages.
download_or_give_up() {
    if playwright_download; then
        check_font
        echo "browser-deps: downloaded Playwright's Chromium$note; using $browser ($browser_version)"
        exit 0
    fi
    echo "browser-deps: no Chromium or Chrome found and $why; three ways to get one:" \
        "(1) $way1; (2) point CALAUDIT_CHROMIUM at a Chrome/Chromium executable;" \
        "(3) Playwright's download for this user, no root: \`$download\`" \
        "($download_result); then run this again" >&2
    exit 1
}

if find_browser; then
    check_font
    echo "browser-deps: using $browser ($browser_version)$note"
    exit 0
fi

if [[ -n ${CALAUDIT_CHROMIUM:-} ]]; then
    echo "browser-deps: CALAUDIT_CHROMIUM=$CALAUDIT_CHROMIUM is not an executable that" \
        "answers --version; point it at a Chrome/Chromium executable, or unset it" >&2
    exit 1
fi

install_command="apt-get install -y --no-install-recommends ${PACKAGES[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
    why="no apt-get here"
    way1="install Google Chrome or Chromium the way this system does"
    download_or_give_up
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]})); then
    if ! get_root prompt; then
        way1="as root: apt-get update && $install_command"
        if ! command -v sudo >/dev/null 2>&1; then
            why="no root for apt-get (there is no sudo)"
        elif [[ -t 0 ]]; then
            why="no root for apt-get (sudo refused)"
        else
            why="no root for apt-get (sudo wants a password and stdin is not a terminal)"
            way1="with sudo: sudo apt-get update && sudo $install_command"
        fi
        download_or_give_up
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
