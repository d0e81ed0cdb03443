#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite in two passes:
#   1. the default suite (slow and timing tests are skipped; -m slow / -m timing run them);
#      arguments given to this script go to this pass only;
#   2. the tests marked nojit again with NUMBA_DISABLE_JIT=1, so the Numba kernels of
#      layerseg.filters, layerseg.layers (and the simulator's) run as plain Python and their
#      bodies are executed line by line (about a minute on 2 cores). LAYERSEG_SKIP_NOJIT=1 skips it.
# Both passes always run; the script fails when either fails, including pytest's exit 5
# ("no tests collected"), which is reported by name rather than passed over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

# The HTML report test loads the report in a real headless browser (Debian's chromium); install
# it where we can (root with apt-get), else that one test is skipped. Never fatal.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
        && [ "$(id -u)" = "0" ] && [ "${LAYERSEG_NO_BROWSER_INSTALL:-0}" != "1" ]; then
    echo "== installing chromium for the report test (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
        >/dev/null 2>&1 || echo "chromium not installed; the browser test will be skipped"
fi

describe() {  # pytest exit status in words
    case "$1" in
        0) echo "passed" ;;
        1) echo "tests failed" ;;
        2) echo "interrupted" ;;
        3) echo "internal error" ;;
        4) echo "usage error" ;;
        5) echo "no tests collected" ;;
        *) echo "exit status $1" ;;
    esac
}

rc_main=0
python -m pytest -n 2 "$@" || rc_main=$?

rc_nojit=0
if [ "${LAYERSEG_SKIP_NOJIT:-0}" != "1" ]; then
    echo "== second pass: nojit tests with NUMBA_DISABLE_JIT=1 (kernels as plain Python) =="
    NUMBA_DISABLE_JIT=1 LAYERSEG_NOJIT_PASS=1 \
        python -m pytest -n 2 -p no:cacheprovider -m "nojit and not slow and not timing" \
        || rc_nojit=$?
fi

echo "scripts/test.sh: main pass: $(describe "$rc_main"); NUMBA_DISABLE_JIT pass:" \
     "$([ "${LAYERSEG_SKIP_NOJIT:-0}" = "1" ] && echo skipped || describe "$rc_nojit")"
if [ "$rc_main" -ne 0 ]; then
    exit "$rc_main"
fi
exit "$rc_nojit"
