#!/usr/bin/env bash
# make check: every byline test, ending in one line CI can read:
#   "N passed, N failed"
# Stages: deps, ASan+UBSan build, unit tests (cmocka), fuzz corpus replay,
# integration tests (real kubectl 1.27 and 1.33 against the stand-in cluster).
set -uo pipefail
cd "$(dirname "$0")/.."
PASS=0
FAIL=0
FAILED=()
stage() { printf '\n=== %s ===\n' "$*"; }
ok()   { PASS=$((PASS + 1)); }
bad()  { FAIL=$((FAIL + 1)); FAILED+=("$1"); echo "FAILED: $1"; }

stage deps
tests/deps.sh || { echo "deps: install failed"; echo "0 passed, 1 failed"; exit 1; }

stage build
JOBS=$(nproc 2>/dev/null || echo 2)
if ! make -s -j"$JOBS" all asan; then
    echo "build failed"
    echo "$PASS passed, $((FAIL + 1)) failed"
    exit 1
fi
# Both compilers must accept the code with -Werror.
if command -v clang >/dev/null; then
    if make -s -j"$JOBS" CC=clang B=build/clang build/clang/byline; then ok; else bad "clang build"; fi
fi

stage unit
for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | grep -c '^\[       OK \]')
    f=$(printf '%s\n' "$out" | grep -c '^\[  FAILED  \] [a-z_]')
    PASS=$((PASS + p))
    if [ $rc -ne 0 ] || [ "$f" -gt 0 ]; then
        printf '%s\n' "$out" | grep -E 'FAILED|ERROR|error|Sanitizer' | head -20
        bad "$(basename "$t") ($f case(s), rc=$rc)"
        FAIL=$((FAIL + (f > 0 ? f - 1 : 0)))
    fi
    echo "$(basename "$t"): $p passed, $f failed"
done

stage fuzz-replay
if make -s -j"$JOBS" fuzz >/dev/null 2>&1; then
    for src in fuzz/fuzz_*.c; do
        f=build/fuzz/$(basename "$src" .c)
        name=$(basename "$src" .c | sed 's/^fuzz_//')
        corpus=fuzz/corpus/$name
        [ -d "$corpus" ] || { bad "fuzz $name: no corpus"; continue; }
        if "$f" -runs=0 "$corpus" >/tmp/byline-fuzz-$name.log 2>&1; then
            ok; echo "fuzz $name: replayed $(ls "$corpus" | wc -l) inputs"
        else
            tail -20 /tmp/byline-fuzz-$name.log; bad "fuzz $name"
        fi
    done
else
    bad "fuzz build"
fi

stage scripts
# Test scripts that end in "N passed, N failed": the CLI end to end, and the
# stand-in's own proof against the real kubectl (no gateway).
for script in "tests/cli/test_cli.sh build/byline" "python3 tests/standin/check_kubectl.py" "python3 tests/integration/ledger_tamper.py build/byline" \
              "python3 tests/integration/query_test.py build/asan/byline" \
              "python3 tests/integration/join_test.py build/byline" \
              "python3 tests/integration/tail_test.py build/asan/byline" \
              "python3 tests/standin/aws_sigv4.py" "python3 tests/integration/aws_test.py build/asan/byline" \
              "python3 tests/integration/agent_eks.py build/asan/byline"; do
    out=$($script 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out" | tail -20; bad "$script (no summary, rc=$rc)"; continue
    fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    PASS=$((PASS + p)); FAIL=$((FAIL + f))
    [ "$f" -gt 0 ] && { printf '%s\n' "$out" | grep -E '^(FAIL|not ok)' | head -20; FAILED+=("$script ($f)"); }
    echo "$script: $line"
done

stage integration
# Once with the ASan+UBSan build, once with the release build under valgrind.
integration() {
    local label=$1; shift
    rm -f build/integration-summary
    python3 tests/integration/run.py "$@" | grep -Ev '^PASS '
    if [ -f build/integration-summary ]; then
        read -r ip if_ < build/integration-summary
        PASS=$((PASS + ip)); FAIL=$((FAIL + if_))
        [ "$if_" -gt 0 ] && FAILED+=("$label ($if_)")
        echo "$label: $ip passed, $if_ failed"
    else
        bad "$label runner"
    fi
}
integration "integration (asan)" --byline build/asan/byline
integration "integration (valgrind)" --byline build/byline --valgrind

echo
[ ${#FAILED[@]} -gt 0 ] && printf 'failed: %s\n' "${FAILED[@]}"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
