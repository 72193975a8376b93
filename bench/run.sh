#!/usr/bin/env bash
# bench/run.sh - `make bench`: byline's throughput and latency against a
# direct connection, against nginx and against itself with the audit
# ledger off (group commit's cost), its commit latency, and idle-watch memory;
# and through a gateway plus `byline agent` (issue 5: what the agent hop adds).
#
# Everything runs on this machine over loopback TLS: a static nginx stands
# in for the API server, wrk drives load with keep-alive. bench/README.md
# explains the method and how to read the numbers. Results go to
# build/bench/latest.{txt,json} (not to git).
#
# Environment (defaults in brackets):
#   BENCH_DURATION [10s]  measured time per setup and body, split over rounds
#   BENCH_ROUNDS [3]      the setups take turns this many times; the report
#                         gives the median round, so a neighbour's burst of
#                         CPU hits every setup alike instead of one
#   BENCH_WARMUP [2s]     wrk run before each measurement, not counted
#                         (1s before the later rounds)
#   BENCH_CONNECTIONS [32] wrk connections
#   BENCH_THREADS [1]     wrk threads
#   BENCH_WORKERS [1]     nginx worker_processes = byline workers
#   BENCH_PIN [auto]      split: servers on CPU 0, wrk on CPU 1; none: no
#                         pinning; auto: split when there are 2+ CPUs and
#                         1 worker, else none
#   BENCH_WATCHES [5000]  idle watches for the memory test (0 skips it)
#   BENCH_WATCH_ROUNDS [2] times the watches are opened and closed again
#                         through byline (memory that grows per round is a
#                         leak); nginx, the reference, gets one round
#   BENCH_PAIRS [10]      issue 3's verdict: byline and byline-noaudit take
#   BENCH_PAIR_SECS [2]   turns this many times (0: none), this long each, per body
#                         (4 pairs with BENCH_QUICK=1)
#   BENCH_QUICK=1         3s, one round, 1s warm-up (development)
#   BENCH_WAIT_IDLE [0]   seconds to wait for other processes to go quiet
#                         before starting (the run warns if they do not)
#   BENCH_BYLINE=PATH     measure this byline binary instead of building
#                         build/byline (e.g. to compare two commits)
#   BENCH_BYLINE_NOAUDIT=PATH  the -DBL_BENCH_NO_AUDIT binary to compare it
#                         with, instead of building build/bench-noaudit/byline
#   BENCH_BUILD [build]   where the binaries are built (make's B=)
#   BENCH_AUDIT_DIR [build/bench]  the audited byline's ledger goes in a new
#                         directory under this one, removed after the run; it
#                         must be on a real disk: fdatasync on tmpfs is free
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
OUT=$ROOT/build/bench

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
ROUNDS=${BENCH_ROUNDS:-3}
PAIRS=${BENCH_PAIRS:-10}
PAIR_SECS=${BENCH_PAIR_SECS:-2}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    DURATION=${BENCH_DURATION:-3s}
    WARMUP=${BENCH_WARMUP:-1s}
    ROUNDS=${BENCH_ROUNDS:-1}
    PAIRS=${BENCH_PAIRS:-4}
fi
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
WORKERS=${BENCH_WORKERS:-1}
PIN=${BENCH_PIN:-auto}
WATCHES=${BENCH_WATCHES:-5000}
WAIT_IDLE=${BENCH_WAIT_IDLE:-0}
WATCH_ROUNDS=${BENCH_WATCH_ROUNDS:-2}
BUILD=${BENCH_BUILD:-build}
AUDIT_BASE=${BENCH_AUDIT_DIR:-$OUT}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }

# ---- processes and cleanup ----

RUN=""
AUDIT_RUN=""
PIDS=()
HOLD_FD=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$HOLD_FD" ] && exec {HOLD_FD}>&- 2>/dev/null
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$RUN" ] && [ -d "$RUN" ]; then
        if [ $rc != 0 ]; then  # keep the servers' logs and configs for the post-mortem
            rm -rf "$OUT/failed"
            mkdir -p "$OUT/failed"
            cp "$RUN"/*.log "$RUN"/*.conf "$RUN"/*.out "$RUN"/*.err "$OUT/failed/" 2>/dev/null || true
            [ -z "$AUDIT_RUN" ] || cp "$AUDIT_RUN"/ledger/status.json "$OUT/failed/audit-status.json" 2>/dev/null || true
            printf 'bench: logs of the failed run are in %s\n' "$OUT/failed" >&2
        fi
        rm -rf "$RUN"
    fi
    [ -z "$AUDIT_RUN" ] || rm -rf "$AUDIT_RUN"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$@" in the background pinned to the server CPUs; sets BG_PID.
start_server() {
    local log=$1
    shift
    $SERVER_PIN "$@" >"$log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# Waits until 127.0.0.1:$1 accepts connections (and $2, the pid, lives).
wait_port() {
    local port=$1 pid=$2 what=$3
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || die "$what exited at start-up (log: $4)$(tail -n 20 "$4" | sed 's/^/\n  /')"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$what is not listening on port $port after 10s"
}

# Prints N free TCP ports on 127.0.0.1.
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# Fills a bench/*.in template: @KEY@ -> value for each KEY=value argument.
render() {
    local in=$1 out=$2
    shift 2
    local args=() kv
    for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
    sed "${args[@]}" "$in" >"$out"
    if grep -q '@[A-Z_]*@' "$out"; then die "unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)"; fi
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }
# RSS of an nginx master and its workers (children), in kB.
nginx_rss_kb() {
    local sum=0 p
    for p in "$1" $(pgrep -P "$1"); do sum=$((sum + $(rss_kb "$p"))); done
    echo $sum
}
# Open descriptors of an nginx master and its workers.
nginx_fd_count() {
    local sum=0 p
    for p in "$1" $(pgrep -P "$1"); do sum=$((sum + $(fd_count "$p"))); done
    echo $sum
}

# ---- setup ----

# Sets BYLINE and BYLINE_NOAUDIT (the same source built with
# -DBL_BENCH_NO_AUDIT: batches acknowledged without the ledger writing).
build_bylines() {
    local noaudit=$BUILD/bench-noaudit
    if [ -n "${BENCH_BYLINE:-}" ]; then
        BYLINE=$(realpath "$BENCH_BYLINE")
        say "measuring $BYLINE (BENCH_BYLINE), not building"
        BYLINE_WHAT=$BYLINE
    else
        make -s B="$BUILD" "$BUILD/byline" || die "could not build $BUILD/byline"
        BYLINE=$ROOT/$BUILD/byline
        BYLINE_WHAT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        git diff --quiet HEAD -- src 2>/dev/null || BYLINE_WHAT="$BYLINE_WHAT+uncommitted"
    fi
    if [ -n "${BENCH_BYLINE_NOAUDIT:-}" ]; then
        BYLINE_NOAUDIT=$(realpath "$BENCH_BYLINE_NOAUDIT")
        say "comparing with $BYLINE_NOAUDIT (BENCH_BYLINE_NOAUDIT), not building"
    else
        [ -n "${BENCH_BYLINE:-}" ] &&
            say "WARNING: BENCH_BYLINE without BENCH_BYLINE_NOAUDIT: byline-noaudit is built from this tree"
        make -s B="$noaudit" CFLAGS="-O2 -g -DBL_BENCH_NO_AUDIT" "$noaudit/byline" ||
            die "could not build $noaudit/byline (-DBL_BENCH_NO_AUDIT)"
        BYLINE_NOAUDIT=$ROOT/$noaudit/byline
    fi
    [ -x "$BYLINE" ] && [ -x "$BYLINE_NOAUDIT" ] || die "no byline binary at $BYLINE or $BYLINE_NOAUDIT"
}

setup_tools() {
    tests/deps.sh || die "tests/deps.sh could not install what the bench needs (wrk, nginx, openssl, python3)"
    local t
    for t in wrk nginx openssl python3 taskset findmnt; do
        command -v "$t" >/dev/null || die "$t is not installed (tests/deps.sh installs wrk, nginx-light, openssl, python3)"
    done
    build_bylines
    local want=$((2 * WATCHES + 1000)) hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    [ "$hard" -ge 20000 ] || [ "$hard" -ge "$want" ] || die "ulimit -Hn is $hard; the watch test needs $want"
    ulimit -n "$(( hard < 65536 ? hard : 65536 ))"
    NCPU=$(nproc)
    local secs=${DURATION%s}
    [[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be whole seconds, e.g. 10s"
    [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number"
    [[ "$PAIRS" =~ ^[0-9]+$ ]] || die "BENCH_PAIRS must be a number (0: no paired runs)"
    [[ "$PAIR_SECS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_PAIR_SECS must be whole seconds, e.g. 2"
    ROUND_SECS=$(( (secs + ROUNDS - 1) / ROUNDS ))
    if [ "$PIN" = auto ]; then
        PIN=none
        [ "$NCPU" -ge 2 ] && [ "$WORKERS" = 1 ] && PIN=split
    fi
    case "$PIN" in
    split) SERVER_PIN="taskset -c 0"; CLIENT_PIN="taskset -c 1" ;;
    none) SERVER_PIN=""; CLIENT_PIN="" ;;
    *) die "BENCH_PIN must be split, none or auto" ;;
    esac
}

make_pki() {
    local d=$RUN/pki name
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=byline bench CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$d/server.ext"
    for name in upstream gateway; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=bench-$name" -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
        openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
            -days 2 -extfile "$d/server.ext" -out "$d/$name.crt" 2>/dev/null
    done
    chmod 600 "$d"/*.key
    python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$RUN/up.token"
    chmod 600 "$RUN/up.token"
    UP_TOKEN=$(cat "$RUN/up.token")
}

# Unless this runs as root (then nginx workers would switch to nobody and
# could not read the temp dir), nginx keeps our user.
nginx_user() { [ "$(id -u)" = 0 ] && echo "user root;" || echo ""; }

start_upstream() {
    mkdir -p "$RUN/www" "$RUN/tmp"
    python3 "$BENCH/bodies.py" "$RUN/www" >"$RUN/bodies.txt"
    render "$BENCH/nginx-upstream.conf.in" "$RUN/upstream.conf" "RUN=$RUN" "PORT=$UP_PORT" \
        "WORKERS=$WORKERS" "UP_TOKEN=$UP_TOKEN" "USER=$(nginx_user)"
    start_server "$RUN/upstream.log" nginx -p "$RUN" -c "$RUN/upstream.conf" -e "$RUN/upstream-error.log" \
        -g "daemon off;"
    UP_PID=$BG_PID
    wait_port "$UP_PORT" "$UP_PID" "upstream nginx" "$RUN/upstream-error.log"
}

# $1 name, $2 upstream port, $3 no-log port, $4 log port; sets NGX_PID.
start_nginx_proxy() {
    render "$BENCH/nginx-proxy.conf.in" "$RUN/$1.conf" "RUN=$RUN" "NAME=$1" "UP_PORT=$2" \
        "PORT_NOLOG=$3" "PORT_LOG=$4" "WORKERS=$WORKERS" "UP_TOKEN=$UP_TOKEN" "USER=$(nginx_user)"
    start_server "$RUN/$1.log" nginx -p "$RUN" -c "$RUN/$1.conf" -e "$RUN/$1-error.log" -g "daemon off;"
    NGX_PID=$BG_PID
    wait_port "$3" "$NGX_PID" "nginx proxy" "$RUN/$1-error.log"
    wait_port "$4" "$NGX_PID" "nginx proxy" "$RUN/$1-error.log"
}

# A new bearer token in byline's format, and its SHA-256 in hex.
new_token() {
    BL_TOKEN=$(python3 -c 'import secrets; print("byl_" + secrets.token_urlsafe(32))')
    TOKEN_SHA=$(printf '%s' "$BL_TOKEN" | sha256sum | cut -d' ' -f1)
}

# Writes a byline config dir by hand (used while `byline init` is not
# implemented). Arguments as byline_config's; sets BL_TOKEN.
byline_config_by_hand() {
    local d=$1
    new_token
    mkdir -p "$d"
    cat >"$d/byline.yaml" <<EOF
# written by bench/run.sh
listen: 127.0.0.1:$2
workers: $WORKERS
tls: { cert: $RUN/pki/gateway.crt, key: $RUN/pki/gateway.key, ca: $RUN/pki/ca.crt }
audit: { dir: "${4:-audit}" }
limits: { max_connections: $((WATCHES + 1000)), drain_timeout: 1s }
connections:
  - name: default
    server: https://127.0.0.1:$3
    ca: $RUN/pki/ca.crt
    token_file: $RUN/up.token
identities:
  - name: bench-agent
    groups: [bench]
    token_sha256: $TOKEN_SHA
EOF
    [ -z "${5:-}" ] || printf 'metrics: { listen: "127.0.0.1:%s" }\n' "$5" >>"$d/byline.yaml"
    chmod 700 "$d"
    chmod 600 "$d/byline.yaml"
    BL_CA=$RUN/pki/ca.crt
}

# Registers bench-agent with `byline identity add`, or by hand while that
# is not implemented. $1 dir; sets BL_TOKEN.
byline_identity() {
    local err=$RUN/identity-add.err
    if BL_TOKEN=$("$BYLINE" identity add bench-agent --dir "$1" 2>"$err"); then
        [[ "$BL_TOKEN" =~ ^byl_[A-Za-z0-9_-]{43}$ ]] || die "byline identity add printed no token on stdout: $BL_TOKEN"
        CONFIG_HOW="$CONFIG_HOW + identity add"
    elif grep -q "not implemented" "$err"; then
        new_token
        printf '%s\n' "identities:" "  - name: bench-agent" "    groups: [bench]" \
            "    token_sha256: $TOKEN_SHA" >"$1/identities.yaml"
        CONFIG_HOW="$CONFIG_HOW + identities.yaml by hand (identity add not implemented yet)"
    else
        die "byline identity add failed: $(cat "$err")"
    fi
}

# Sets workers and limits in a byline.yaml made by `byline init`: it has
# top-level "workers:", a block "limits:" with two-space indented keys, an
# "audit:" block with "  dir: audit" and no "metrics:" block. $1 dir,
# $2 audit.dir or "" (keep), $3 metrics.listen port or "" (none).
byline_tune() {
    local y=$1/byline.yaml
    grep -q '^workers:' "$y" && grep -q '^  max_connections:' "$y" && grep -q '^  drain_timeout:' "$y" &&
        grep -q '^  dir: audit$' "$y" && ! grep -q '^metrics:' "$y" ||
        die "byline init's byline.yaml changed shape; update byline_tune in bench/run.sh"
    sed -i -e "s/^workers:.*/workers: $WORKERS/" \
        -e "s/^  max_connections:.*/  max_connections: $((WATCHES + 1000))/" \
        -e "s/^  drain_timeout:.*/  drain_timeout: 1s/" "$y"
    # byline denies what no rule allows: the benchmark's agent may do anything.
    printf '%s\n' "" "  - name: bench-allow-all" "    effect: allow" >>"$1/policy.yaml"
    bench_policy_load "$1"
    [ -z "$2" ] || sed -i -e "s#^  dir: audit\$#  dir: \"$2\"#" "$y"
    [ -z "$3" ] || printf '%s\n' "" "metrics:" "  listen: 127.0.0.1:$3" >>"$y"
}

# Issue 4's case: 1,000 rules and 1,000 rate limits for 1,000 identities in
# force, as a large deployment would have them; the benchmark's agent is one
# of the limited identities (its limits never refuse: the cost measured is
# the evaluation and the bucket every request pays). BENCH_POLICY_RULES
# [1000]; 0 leaves the policy at bench-allow-all alone.
bench_policy_load() {
    local n=${BENCH_POLICY_RULES:-1000} y=$1/byline.yaml
    [ "$n" -gt 0 ] || return 0
    grep -q '^    - policy.yaml$' "$y" || die "byline init's byline.yaml changed shape; update bench_policy_load"
    awk -v n="$n" 'BEGIN { for (i = 0; i < n - 1; i++)
        printf "  - name: agent-%d-web\n    effect: %s\n    identities: [agent-%d]\n    verbs: [get, list, watch, patch]\n    resources: [pods, deployments, configmaps]\n    namespaces: [ns-%d, \"ns-%d-*\"]\n",
               i, i % 17 ? "allow" : "deny", i, i % 40, i % 40 }' >>"$1/policy.yaml"
    awk -v n="$n" 'BEGIN { print "  limits:"
        print "    - {name: bench-agent, identities: [bench-agent], reads: 1000000/s burst 1000000, writes: 1000/s}"
        for (i = 0; i < n - 1; i++)
            printf "    - {name: l%d, identities: [agent-%d], reads: 50/s burst 100, writes: 5/s, exec: 10/m}\n", i, i }' \
        >"$1/limits.yaml.part"
    sed -i "/^    - policy.yaml\$/r $1/limits.yaml.part" "$y"
    rm -f "$1/limits.yaml.part"
}

# $1 dir, $2 listen port, $3 upstream port, $4 audit.dir or "", $5 metrics
# port or ""; sets BL_TOKEN, BL_CA, CONFIG_HOW.
byline_config() {
    local d=$1 out
    if out=$("$BYLINE" init --dir "$d" --upstream "https://127.0.0.1:$3" --upstream-ca "$RUN/pki/ca.crt" \
        --upstream-token-file "$RUN/up.token" --listen "127.0.0.1:$2" 2>&1); then
        CONFIG_HOW="byline init"
        byline_tune "$d" "${4:-}" "${5:-}"
        byline_identity "$d"
        BL_CA=$d/tls/ca.crt
        [ -f "$BL_CA" ] || die "byline init wrote no $BL_CA; update byline_config in bench/run.sh"
    elif grep -q "not implemented" <<<"$out"; then
        rm -rf "$d"
        byline_config_by_hand "$@"
        CONFIG_HOW="written by hand (byline init not implemented yet)"
    else
        die "byline init failed: $out"
    fi
}

# $1 dir, $2 port, $3 name, $4 binary [BYLINE]; sets BL_PID.
start_byline() {
    start_server "$RUN/$3.log" "${4:-$BYLINE}" serve --dir "$1"
    BL_PID=$BG_PID
    wait_port "$2" "$BL_PID" "byline" "$RUN/$3.log"
}

# The gateway + agent setup (issue 5), as tests/integration/agent.py sets it
# up: a byline tuned and audited like "byline" whose only connection is
# `via: agent` (the one init wrote is dropped: with two, every path would
# need a /k8s/NAME/ prefix), an agent key, and an agent config holding the
# upstream's address, CA and token.
# $1 dir, $2 listen port, $3 the port the agent forwards to, $4 audit.dir or
# "", $5 metrics port or ""; sets BL_TOKEN, BL_CA, AGENT_KEY, AGENT_CFG.
byline_agent_config() {
    local d=$1 key
    byline_config "$d" "$2" "$3" "${4:-}" "${5:-}"
    grep -q '^connections:$' "$d/byline.yaml" || die "no connections: block in $d/byline.yaml; update byline_agent_config"
    awk '/^connections:$/ { print; print "  - name: via-agent"; print "    via: agent"; skip = 1; next }
         skip && /^  - name: / { skip = 2; next }
         skip == 2 && /^    / { next }
         { if (skip == 2) skip = 0; print }' "$d/byline.yaml" >"$d/byline.yaml.new"
    mv "$d/byline.yaml.new" "$d/byline.yaml"
    chmod 600 "$d/byline.yaml"
    grep -q '^    server:' "$d/byline.yaml" && die "could not remove the direct connection from $d/byline.yaml"
    key=$("$BYLINE" agent-key add bench-vpc --connection via-agent --dir "$d" 2>"$RUN/agent-key.err") ||
        die "byline agent-key add failed: $(cat "$RUN/agent-key.err")"
    [[ "$key" =~ ^bya_ ]] || die "byline agent-key add printed no key: $key"
    AGENT_KEY=$d/agent.key AGENT_CFG=$d/agent.yaml
    printf '%s\n' "$key" >"$AGENT_KEY"
    printf '%s\n' "connections:" "  - name: via-agent" "    server: https://127.0.0.1:$3" \
        "    ca: $RUN/pki/ca.crt" "    token_file: $RUN/up.token" >"$AGENT_CFG"
    chmod 600 "$AGENT_KEY" "$AGENT_CFG"
}

# Starts `byline agent` for the gateway on port $2 (config dir $1, log of
# the gateway $3), pinned like the servers: the agent is one more process
# on the server CPU. Waits until the gateway says it connected; sets AGENT_PID.
start_agent() {
    local name=$(basename "$1")-agent
    start_server "$RUN/$name.log" "$BYLINE" agent --gateway "https://127.0.0.1:$2" --key-file "$AGENT_KEY" \
        --config "$AGENT_CFG" --ca "$1/tls/ca.crt"
    AGENT_PID=$BG_PID
    for _ in $(seq 100); do
        grep -q 'agent bench-vpc connected' "$3" && return 0
        kill -0 "$AGENT_PID" 2>/dev/null || die "byline agent exited at start-up: $(tail -n 20 "$RUN/$name.log")"
        sleep 0.1
    done
    die "byline agent did not connect to the gateway in 10s: $(tail -n 5 "$RUN/$name.log")"
}

# ---- throughput ----

PATH_CM="/api/v1/namespaces/bench/configmaps?limit=10"
PATH_PODS="/api/v1/namespaces/bench/pods"

# $1 setup, $2 port, $3 token; checks both bodies come back intact.
preflight() {
    printf '%s\n' "$3" >"$RUN/check.token"
    python3 "$BENCH/check.py" --name "$1" --port "$2" --ca "${4:-$RUN/pki/ca.crt}" --token-file "$RUN/check.token" \
        "$PATH_CM=$RUN/www/configmaps.json" "$PATH_PODS=$RUN/www/pods.json" || die "pre-flight check of $1 failed"
}

# $1 duration, $2 port, $3 path, $4 token, $5 output file. Runs wrk pinned;
# its CPU time (user+sys seconds) goes to $5.time.
run_wrk() {
    local TIMEFORMAT='%U %S'
    { time $CLIENT_PIN wrk --latency -d "$1" -c "$CONNS" -t "$THREADS" -s "$BENCH/wrk-report.lua" \
        -H "Authorization: Bearer $4" -H "Accept: application/json" \
        -H "User-Agent: kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9" \
        "https://127.0.0.1:$2$3" >"$5" 2>&1; } 2>"$5.time" || die "wrk failed: $(cat "$5")"
    grep -q '^WRKJSON ' "$5" || die "wrk printed no result: $(cat "$5")"
}

SETUPS=(direct nginx nginx+log byline byline-noaudit byline+agent)
# Sum of "requests" over wrk outputs, per setup (for the audit count).
declare -A SENT
# /metrics port per setup that has one (the three bylines).
declare -A MPORT

# Saves byline's audit counters and commit histogram to $2 if setup $1 has
# a /metrics port.
scrape() {
    [ -z "${MPORT[$1]:-}" ] || python3 "$BENCH/metrics.py" scrape "${MPORT[$1]}" "$2" || exit 1
}

# $1 setup, $2 port, $3 token, $4 pid to watch, $5 body key, $6 path, $7 round.
measure() {
    local setup=$1 port=$2 token=$3 pid=$4 body=$5 path=$6 f n warm=$WARMUP
    f=$OUT/raw/$setup.$body.r$7
    [ "$7" = 1 ] || warm=1s
    say "round $7/$ROUNDS: $setup $body: warm-up $warm, then ${ROUND_SECS}s"
    run_wrk "$warm" "$port" "$path" "$token" "$f.warmup.txt"
    scrape "$setup" "$f.metrics0.json"
    python3 "$BENCH/cpu.py" snap "$RUN/cpu.before"
    run_wrk "${ROUND_SECS}s" "$port" "$path" "$token" "$f.txt"
    python3 "$BENCH/cpu.py" snap "$RUN/cpu.after"
    scrape "$setup" "$f.metrics1.json"
    python3 "$BENCH/cpu.py" diff "$RUN/cpu.before" "$RUN/cpu.after" --root $$ \
        --ours-cpu "$(awk '{ print $1 + $2 }' "$f.txt.time")" --label "$UP_PID=upstream" \
        --label "$NGX_PID=nginx" --label "$BL_PID=byline" --label "$BLN_PID=byline-noaudit" \
        --label "$BLA_PID=byline+agent" --label "$AGENT_PID=agent" >"$f.cpu.json"
    warn_other_cpu "$f.cpu.json" "during $setup $body round $7"
    kill -0 "$pid" 2>/dev/null || die "$setup died under load (see $OUT/raw/)"
    [ "$setup" != byline+agent ] || kill -0 "$AGENT_PID" 2>/dev/null || die "byline agent died under load"
    for n in "$f.warmup.txt" "$f.txt"; do count_wrk "$n" "$setup" "$body"; done
    grep '^WRKJSON ' "$f.txt" | cut -d' ' -f2- >"$f.json"
}

# Fails on any error or no request in wrk output $1 (setup $2, body $3);
# adds its requests to SENT[$2] for the audit check.
count_wrk() {
    python3 - "$1" "$2 $3" <<'EOF' || exit 1
import json, sys
r = json.loads(open(sys.argv[1]).read().split("WRKJSON ", 1)[1].splitlines()[0])
bad = {k: r[k] for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts") if r[k]}
if bad or r["requests"] == 0:
    sys.exit(f"bench: FAIL: {sys.argv[2]}: {r['requests']} requests, errors {bad} ({sys.argv[1]})")
EOF
    SENT[$2]=$(( ${SENT[$2]:-0} + $(sed -n 's/^WRKJSON {"requests":\([0-9]*\),.*/\1/p' "$1") ))
}

# Issue 3's verdict, paired: byline and byline-noaudit take turns in
# BENCH_PAIRS short runs of BENCH_PAIR_SECS per body (the order swapped
# every pair), so a slow moment of the host falls on both sides of a pair
# rather than on one setup's round. $1 port, $2 token of byline; $3, $4
# of byline-noaudit.
goal_pairs() {
    local body path k s f
    local -a order
    for body in cm pods; do
        [ $body = cm ] && path=$PATH_CM || path=$PATH_PODS
        for k in $(seq "$PAIRS"); do
            order=(byline byline-noaudit)
            [ $((k % 2)) = 0 ] && order=(byline-noaudit byline)
            say "goal pair $k/$PAIRS, $body: ${order[0]}, then ${order[1]} (${PAIR_SECS}s each)"
            for s in "${order[@]}"; do
                f=$OUT/raw/pair.$s.$body.$k.txt
                if [ "$s" = byline ]; then run_wrk "${PAIR_SECS}s" "$1" "$path" "$2" "$f"
                else run_wrk "${PAIR_SECS}s" "$3" "$path" "$4" "$f"; fi
                count_wrk "$f" "$s" "$body"
                grep '^WRKJSON ' "$f" | cut -d' ' -f2- >"${f%.txt}.json"
            done
        done
    done
}

# byline writes one "result" entry per request (in ledger segments); wrk counts only answers it
# read before its clock stopped, so up to $CONNS per wrk run may be extra. $1: the ledger dir,
# $2 the setup [byline]; sets AUDIT_JSON.
check_audit() {
    local setup=${2:-byline} tag=audit${2:+-$2}
    local log=$RUN/results.jsonl sent=${SENT[$setup]} results allowed runs=$((ROUNDS * 4 + 2)) slack lines
    [ "$setup" != byline ] || runs=$((runs + PAIRS * 2))  # the goal pairs' runs
    ls "$1"/ledger-*.jsonl >/dev/null 2>&1 || die "no audit ledger in $1"
    grep -h '"kind":"result"' "$1"/ledger-*.jsonl >"$log" || true
    lines=$(cat "$1"/ledger-*.jsonl | wc -l)
    results=$(wc -l <"$log")
    # Keys are in canonical (sorted) order, but others (e.g. "rule") may sit between these two.
    allowed=$(grep '"result":"allowed"' "$log" | grep -c '"status":200,' || true)
    slack=$((runs * CONNS + 2))  # +2: the pre-flight check's requests
    grep -v -e '"result":"allowed".*"status":200,' "$log" >"$OUT/raw/$tag-other.jsonl" || true
    say "audit ($setup): $results result records ($allowed allowed with 200) for $sent requests wrk counted"
    [ "$allowed" = "$results" ] || say "audit: the other $((results - allowed)) are in $OUT/raw/$tag-other.jsonl"
    [ "$results" -ge "$sent" ] && [ "$results" -le $((sent + slack)) ] ||
        die "$setup's audit log has $results result records for $sent requests (allowed slack $slack)"
    # Durable before forwarded: the ledger must have run with fdatasync.
    grep -q '"state":"ok","sync":true' "$1/status.json" ||
        die "$setup did not run with audit.sync on and state ok: $(tr -s ' ' <"$1/status.json")"
    cp "$1/status.json" "$OUT/raw/$tag-status.json"
    AUDIT_JSON="{\"results\":$results,\"allowed_200\":$allowed,\"wrk_requests\":$sent,\"lines\":$lines,\"sync\":true}"
}

# The audited byline's ledger goes in a new directory under AUDIT_BASE. It
# must be on a real disk: fdatasync on tmpfs costs nothing and would
# flatter byline. Sets AUDIT_RUN and AUDIT_FS_JSON.
setup_audit_dir() {
    local fs src
    mkdir -p "$AUDIT_BASE" || die "cannot create BENCH_AUDIT_DIR $AUDIT_BASE"
    AUDIT_RUN=$(mktemp -d "$(realpath "$AUDIT_BASE")/audit.XXXXXX") || die "cannot create a directory in $AUDIT_BASE"
    fs=$(stat -f -c %T "$AUDIT_RUN")
    src=$(findmnt -n -o SOURCE,FSTYPE,OPTIONS --target "$AUDIT_RUN" | head -1 | tr -s ' ') || src="?"
    say "audit ledger in $AUDIT_RUN: file system $fs ($src)"
    local ram=false
    case "$fs" in
    tmpfs | ramfs)
        ram=true
        say "WARNING: ******************************************************************"
        say "WARNING: the audit ledger is on $fs: fdatasync costs nothing there, so the"
        say "WARNING: audited numbers are FLATTERED. Set BENCH_AUDIT_DIR to a directory"
        say "WARNING: on a real disk (the one the ledger would use in production)."
        say "WARNING: ******************************************************************"
        ;;
    esac
    AUDIT_FS_JSON="{\"dir\":\"$AUDIT_RUN\",\"fstype\":\"$fs\",\"mount\":\"$src\",\"ram\":$ram}"
}

# byline logs nothing per request at the default level; an error or
# warning during a run is a finding. $1 log, $2 name.
check_byline_log() {
    local errs warns
    cp "$1" "$OUT/raw/$2.stderr"
    errs=$(grep -c '\] error: ' "$1" || true)
    warns=$(grep -c '\] warn: ' "$1" || true)
    [ "$warns" = 0 ] || say "$2 logged $warns warning(s), e.g.: $(grep '\] warn: ' "$1" | head -3)"
    [ "$errs" = 0 ] || die "$2 logged $errs error(s), e.g.: $(grep '\] error: ' "$1" | head -5)"
}

# ---- idle watches ----

# One round of the watch test: opens WATCHES watches through 127.0.0.1:$2,
# samples the server, closes them, samples again. $1 name, $2 port, $3 pid,
# $4 CA, $5 token file or "", $6 round. Appends to WM_ROUNDS.
watch_round() {
    local name=$1 pid=$3 tag=$1.$6 wpid ready closed during fds_during after
    mkfifo "$RUN/$tag.in"
    python3 "$BENCH/watchers.py" --port "$2" --ca "$4" ${5:+--token-file "$5"} -n "$WATCHES" \
        <"$RUN/$tag.in" >"$RUN/$tag.watchers.out" 2>"$RUN/$tag.watchers.err" &
    wpid=$!
    PIDS+=("$wpid")
    exec {HOLD_FD}>"$RUN/$tag.in"
    for _ in $(seq 600); do
        grep -q '^READY' "$RUN/$tag.watchers.out" && break
        kill -0 "$wpid" 2>/dev/null || die "watchers for $name exited: $(cat "$RUN/$tag.watchers.err")"
        sleep 0.5
    done
    ready=$(grep '^READY' "$RUN/$tag.watchers.out") || die "watchers for $name not ready after 300s"
    if ! grep -q 'failed=0' <<<"$ready"; then
        # Through the agent, watches past what one agent session carries
        # are refused with an answer; that is a finding, not a crash.
        # BL_MUX_MAX_STREAMS (src/net/h2mux.c): tunnels one agent session carries.
        local opened cap=$(( WATCHES < 8192 ? WATCHES : 8192 ))
        opened=$(sed -n 's/.*opened=\([0-9]*\).*/\1/p' <<<"$ready")
        [ -n "$WM_AGENT" ] && [ "${opened:-0}" -ge "$cap" ] ||
            die "$name: some watches failed ($ready): $(head -5 "$RUN/$tag.watchers.err")"
        say "$name: some watches were refused ($ready), e.g.: $(sort "$RUN/$tag.watchers.err" | uniq -c | sort -rn | head -3)"
    fi
    sleep 1  # let allocations settle
    kill -0 "$pid" 2>/dev/null || die "$name died holding watches"
    during=$($WM_RSS "$pid")
    fds_during=$($WM_FDS "$pid")
    local agent_during=0 agent_after=0 agent_fds=0
    if [ -n "$WM_AGENT" ]; then
        kill -0 "$WM_AGENT" 2>/dev/null || die "byline agent died holding watches"
        agent_during=$(rss_kb "$WM_AGENT")
        agent_fds=$(fd_count "$WM_AGENT")
    fi
    exec {HOLD_FD}>&-
    HOLD_FD=""
    wait "$wpid" || die "watchers for $name failed: $(cat "$RUN/$tag.watchers.err")"
    closed=$(grep '^CLOSED' "$RUN/$tag.watchers.out" || echo "CLOSED dropped=?")
    grep -q 'dropped=0' <<<"$closed" || die "$name dropped idle watches: $closed"
    sleep 1
    kill -0 "$pid" 2>/dev/null || die "$name died after the watches closed"
    after=$($WM_RSS "$pid")
    say "$name round $6: ${ready#READY }; RSS ${during} kB, ${after} kB after they closed"
    local agent_json=""
    if [ -n "$WM_AGENT" ]; then
        kill -0 "$WM_AGENT" 2>/dev/null || die "byline agent died after the watches closed"
        agent_after=$(rss_kb "$WM_AGENT")
        say "$name round $6: the agent's RSS ${agent_during} kB, ${agent_after} kB after they closed"
        agent_json=$(printf ',"agent_rss_during_kb":%d,"agent_rss_after_kb":%d,"agent_fds_during":%d' \
            "$agent_during" "$agent_after" "$agent_fds")
    fi
    WM_ROUNDS+=("$(printf '{"rss_during_kb":%d,"rss_after_kb":%d,"fds_during":%d,"ready":"%s","opened":%d%s}' \
        "$during" "$after" "$fds_during" "$ready" "$(sed -n 's/.*opened=\([0-9]*\).*/\1/p' <<<"$ready")" "$agent_json")")
}

# $1 name, $2 port, $3 pid, $4 "byline" or "nginx", $5 token or "", $6 the
# CA that verifies the endpoint, $7 rounds, $8 the pid of the agent behind
# the gateway or "" (its RSS is sampled too); sets WM_JSON.
watch_memory() {
    local name=$1 tf="" before fds_before r agent_before=""
    WM_RSS=rss_kb WM_FDS=fd_count WM_ROUNDS=() WM_AGENT=${8:-}
    if [ "$4" = nginx ]; then WM_RSS=nginx_rss_kb WM_FDS=nginx_fd_count; fi
    if [ -n "$5" ]; then tf=$RUN/$name.watch.token; printf '%s\n' "$5" >"$tf"; fi
    sleep 1
    before=$($WM_RSS "$3")
    fds_before=$($WM_FDS "$3")
    [ -z "$WM_AGENT" ] || agent_before=$(printf ',"agent_rss_before_kb":%d' "$(rss_kb "$WM_AGENT")")
    say "$name: RSS $before kB before the watches${agent_before:+ (agent: $(rss_kb "$WM_AGENT") kB)}"
    for r in $(seq "$7"); do watch_round "$name" "$2" "$3" "$6" "$tf" "$r"; done
    WM_JSON=$(printf '{"watches":%d,"rss_before_kb":%d,"fds_before":%d%s,"rounds":[%s]}' \
        "$WATCHES" "$before" "$fds_before" "$agent_before" "$(IFS=,; echo "${WM_ROUNDS[*]}")")
    WM_AGENT=""
}

watch_test() {
    local wup=$1 blp=$2 ngp=$3 ngp2=$4 blap=$5 wup_pid bl_rss ng_rss bla_rss
    say "idle watches: $WATCHES through byline, then through byline + agent, then through nginx"
    start_server "$RUN/watch-upstream.log" python3 "$BENCH/watch_upstream.py" --port "$wup" \
        --cert "$RUN/pki/upstream.crt" --key "$RUN/pki/upstream.key"
    wup_pid=$BG_PID
    wait_port "$wup" "$wup_pid" "watch upstream" "$RUN/watch-upstream.log"
    byline_config "$RUN/byline-watch" "$blp" "$wup"
    start_byline "$RUN/byline-watch" "$blp" byline-watch
    watch_memory byline "$blp" "$BL_PID" byline "$BL_TOKEN" "$BL_CA" "$WATCH_ROUNDS"
    bl_rss=$WM_JSON
    # The same watches through a gateway whose connection is via: agent: the
    # gateway and the agent (all streams over its one HTTP/2 connection)
    # are sampled separately.
    byline_agent_config "$RUN/byline-agent-watch" "$blap" "$wup"
    start_byline "$RUN/byline-agent-watch" "$blap" byline-agent-watch
    local blaw_pid=$BL_PID
    start_agent "$RUN/byline-agent-watch" "$blap" "$RUN/byline-agent-watch.log"
    watch_memory byline+agent "$blap" "$blaw_pid" byline "$BL_TOKEN" "$BL_CA" "$WATCH_ROUNDS" "$AGENT_PID"
    bla_rss=$WM_JSON
    cp "$RUN/byline-agent-watch.log" "$OUT/raw/byline-agent-watch.stderr"
    cp "$RUN/byline-agent-watch-agent.log" "$OUT/raw/byline-agent-watch-agent.stderr"
    start_nginx_proxy nginx-watch "$wup" "$ngp" "$ngp2"
    check_byline_log "$RUN/byline-watch.log" byline-watch
    watch_memory nginx "$ngp" "$NGX_PID" nginx "" "$RUN/pki/ca.crt" 1
    ng_rss=$WM_JSON
    WATCH_JSON="{\"byline\":$bl_rss,\"byline+agent\":$bla_rss,\"nginx\":$ng_rss}"
}

# Warns when processes outside the benchmark used CPU ($1: cpu.py diff JSON).
warn_other_cpu() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
if c["other_cores"] >= 0.05 or c["steal_cores"] >= 0.05:
    top = ", ".join(f"{n} {v:.2f}" for n, v in c["top"]) or "short-lived processes"
    print(f"bench: WARNING: other processes used {c['other_cores']:.2f} CPU cores {sys.argv[2]} ({top}); "
          f"steal {c['steal_cores']:.2f}: numbers are not trustworthy", file=sys.stderr)
EOF
}

# Checks for two seconds that the machine is otherwise idle; waits up to
# BENCH_WAIT_IDLE seconds for it to become so.
check_idle() {
    local waited=0 other
    for (( ; ; )); do
        python3 "$BENCH/cpu.py" snap "$RUN/cpu.before"
        sleep 2
        python3 "$BENCH/cpu.py" snap "$RUN/cpu.after"
        python3 "$BENCH/cpu.py" diff "$RUN/cpu.before" "$RUN/cpu.after" --root $$ >"$OUT/raw/idle.cpu.json"
        other=$(python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); print(int(100 * (c["other_cores"] + c["steal_cores"])))' "$OUT/raw/idle.cpu.json")
        [ "$other" -lt 5 ] && return 0
        [ "$waited" -ge "$WAIT_IDLE" ] && break
        [ "$waited" = 0 ] && say "other processes use $other% of a core; waiting up to ${WAIT_IDLE}s for quiet"
        sleep 8
        waited=$((waited + 10))
    done
    warn_other_cpu "$OUT/raw/idle.cpu.json" "before the run"
}

# ---- main ----

# What one policy decision costs per request (issue 4): 1,000 rules, 1,000
# identities and 1,001 rate limits read by the real loader, plus the
# guardrails' rate-limit check (bench/policy_eval.c). CPU-bound, no servers:
# it runs before they start. BENCH_POLICY_ROUNDS [1000000] evaluations each.
policy_bench() {
    make -s B="$BUILD" "$BUILD/bench/policy_eval" || die "could not build $BUILD/bench/policy_eval"
    say "policy evaluation: 1,000 rules, 1,000 identities (bench/policy_eval.c)"
    "$BUILD/bench/policy_eval" "${BENCH_POLICY_ROUNDS:-1000000}" | tee "$OUT/raw/policy.txt" >&2 ||
        die "bench/policy_eval failed"
}

# What a group commit costs the ledger's disk without byline (append +
# fdatasync, bench/commit_probe.c), pinned like the servers: the floor
# under the audited byline's commit latency and its writer's CPU per
# commit. A one-request commit and a loaded one. Sets PROBE_JSON.
commit_probe() {
    make -s B="$BUILD" "$BUILD/bench/commit_probe" || die "could not build $BUILD/bench/commit_probe"
    local small big
    small=$($SERVER_PIN "$BUILD/bench/commit_probe" "$AUDIT_RUN" 1024 2000) || die "bench/commit_probe failed"
    big=$($SERVER_PIN "$BUILD/bench/commit_probe" "$AUDIT_RUN" 16384 2000) || die "bench/commit_probe failed"
    say "the ledger's disk without byline, append + fdatasync: $small"
    say "the ledger's disk without byline, append + fdatasync: $big"
    PROBE_JSON="[$small,$big]"
}

main() {
    setup_tools
    RUN=$(mktemp -d /tmp/byline-bench.XXXXXX)
    rm -rf "$OUT/raw" "$OUT/failed"
    mkdir -p "$OUT/raw"
    setup_audit_dir
    check_idle
    policy_bench
    commit_probe
    make_pki
    read -r UP_PORT NG_PORT NGL_PORT BL_PORT BLN_PORT BL_MPORT BLN_MPORT WUP_PORT BLW_PORT NGW_PORT NGW2_PORT \
        BLA_PORT BLA_MPORT BLAW_PORT <<<"$(free_ports 14)"
    say "pin=$PIN workers=$WORKERS connections=$CONNS threads=$THREADS rounds=$ROUNDS x ${ROUND_SECS}s warm-up=$WARMUP"
    start_upstream
    start_nginx_proxy nginx "$UP_PORT" "$NG_PORT" "$NGL_PORT"
    # The two bylines: same config (each its own init), same pinning; only
    # the binary and where the ledger goes differ.
    byline_config "$RUN/byline" "$BL_PORT" "$UP_PORT" "$AUDIT_RUN/ledger" "$BL_MPORT"
    start_byline "$RUN/byline" "$BL_PORT" byline
    local bl_token=$BL_TOKEN bl_ca=$BL_CA bl_pid=$BL_PID
    byline_config "$RUN/byline-noaudit" "$BLN_PORT" "$UP_PORT" "" "$BLN_MPORT"
    start_byline "$RUN/byline-noaudit" "$BLN_PORT" byline-noaudit "$BYLINE_NOAUDIT"
    local BLN_TOKEN=$BL_TOKEN BLN_CA=$BL_CA
    BLN_PID=$BL_PID
    # The third: audited and tuned like the first, its ledger on the same
    # disk, but its connection is via: agent and one `byline agent` relays
    # to the same upstream.
    byline_agent_config "$RUN/byline-agent" "$BLA_PORT" "$UP_PORT" "$AUDIT_RUN/ledger-agent" "$BLA_MPORT"
    start_byline "$RUN/byline-agent" "$BLA_PORT" byline-agent
    BLA_PID=$BL_PID
    local bla_token=$BL_TOKEN bla_ca=$BL_CA
    start_agent "$RUN/byline-agent" "$BLA_PORT" "$RUN/byline-agent.log"
    BL_PID=$bl_pid
    MPORT[byline]=$BL_MPORT MPORT[byline-noaudit]=$BLN_MPORT MPORT[byline+agent]=$BLA_MPORT
    say "byline config: $CONFIG_HOW"

    local -A port token pid ca
    local setup
    port=([direct]=$UP_PORT [nginx]=$NG_PORT [nginx+log]=$NGL_PORT [byline]=$BL_PORT [byline-noaudit]=$BLN_PORT
        [byline+agent]=$BLA_PORT)
    token=([direct]=$UP_TOKEN [nginx]=$bl_token [nginx+log]=$bl_token [byline]=$bl_token
        [byline-noaudit]=$BLN_TOKEN [byline+agent]=$bla_token)
    pid=([direct]=$UP_PID [nginx]=$NGX_PID [nginx+log]=$NGX_PID [byline]=$BL_PID [byline-noaudit]=$BLN_PID
        [byline+agent]=$BLA_PID)
    ca=([direct]=$RUN/pki/ca.crt [nginx]=$RUN/pki/ca.crt [nginx+log]=$RUN/pki/ca.crt [byline]=$bl_ca
        [byline-noaudit]=$BLN_CA [byline+agent]=$bla_ca)
    for setup in "${SETUPS[@]}"; do preflight "$setup" "${port[$setup]}" "${token[$setup]}" "${ca[$setup]}"; done

    local body path round
    for round in $(seq "$ROUNDS"); do
        for body in cm pods; do
            [ $body = cm ] && path=$PATH_CM || path=$PATH_PODS
            for setup in "${SETUPS[@]}"; do
                measure "$setup" "${port[$setup]}" "${token[$setup]}" "${pid[$setup]}" $body "$path" "$round"
            done
        done
    done
    [ "$PAIRS" = 0 ] || goal_pairs "${port[byline]}" "${token[byline]}" "${port[byline-noaudit]}" "${token[byline-noaudit]}"
    # Added latency without queueing: one connection at a time, so a
    # request never waits behind others (saturated p99 is mostly queue).
    local saved=$CONNS f
    CONNS=1
    for setup in "${SETUPS[@]}"; do
        f=$OUT/raw/$setup.low
        say "unloaded latency: $setup (1 connection, ${ROUND_SECS}s)"
        run_wrk 1s "${port[$setup]}" "$PATH_CM" "${token[$setup]}" "$f.warmup.txt"
        scrape "$setup" "$f.metrics0.json"
        run_wrk "${ROUND_SECS}s" "${port[$setup]}" "$PATH_CM" "${token[$setup]}" "$f.txt"
        scrape "$setup" "$f.metrics1.json"
        grep '^WRKJSON ' "$f.txt" | cut -d' ' -f2- >"$f.json"
        SENT[$setup]=$(( ${SENT[$setup]:-0} + $(sed -n 's/^WRKJSON {"requests":\([0-9]*\),.*/\1/p' "$f.warmup.txt") ))
        SENT[$setup]=$(( ${SENT[$setup]:-0} + $(sed -n 's/^WRKJSON {"requests":\([0-9]*\),.*/\1/p' "$f.txt") ))
    done
    CONNS=$saved
    local agent_audit
    check_audit "$AUDIT_RUN/ledger-agent" byline+agent
    agent_audit=$AUDIT_JSON
    check_audit "$AUDIT_RUN/ledger"
    AUDIT_JSON="${AUDIT_JSON%\}},\"byline+agent\":$agent_audit}"
    check_byline_log "$RUN/byline.log" byline
    check_byline_log "$RUN/byline-noaudit.log" byline-noaudit
    check_byline_log "$RUN/byline-agent.log" byline+agent
    check_byline_log "$RUN/byline-agent-agent.log" agent

    WATCH_JSON=null
    [ "$WATCHES" -gt 0 ] && watch_test "$WUP_PORT" "$BLW_PORT" "$NGW_PORT" "$NGW2_PORT" "$BLAW_PORT"

    cat >"$OUT/raw/meta.json" <<EOF
{"pin":"$PIN","workers":$WORKERS,"connections":$CONNS,"threads":$THREADS,"duration":"$DURATION",
 "rounds":$ROUNDS,"round_seconds":$ROUND_SECS,"pairs":$PAIRS,"pair_seconds":$PAIR_SECS,
 "warmup":"$WARMUP","cpus":$NCPU,"cpu_model":"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)",
 "byline_commit":"$BYLINE_WHAT","byline_noaudit":"$BYLINE_NOAUDIT",
 "audit_fs":$AUDIT_FS_JSON,
 "nginx":"$(nginx -v 2>&1 | sed 's/.*nginx\///')","wrk":"$(wrk -v 2>&1 | head -1 | cut -d' ' -f2)",
 "config":"$CONFIG_HOW","bodies":"$(tr '\n' ';' <"$RUN/bodies.txt")",
 "audit":$AUDIT_JSON,"commit_probe":$PROBE_JSON,"watch":$WATCH_JSON}
EOF
    python3 "$BENCH/report.py" "$OUT"
}

main "$@"
