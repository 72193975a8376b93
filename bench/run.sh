#!/usr/bin/env bash
# bench/run.sh - `make bench`: byline's throughput and latency against a
# direct connection and against nginx, plus idle-watch memory.
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
#   BENCH_QUICK=1         3s, one round, 1s warm-up (development)
#   BENCH_WAIT_IDLE [0]   seconds to wait for other processes to go quiet
#                         before starting (the run warns if they do not)
#   BENCH_BYLINE=PATH     measure this byline binary instead of building
#                         build/byline (e.g. to compare two commits)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
OUT=$ROOT/build/bench

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
ROUNDS=${BENCH_ROUNDS:-3}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    DURATION=${BENCH_DURATION:-3s}
    WARMUP=${BENCH_WARMUP:-1s}
    ROUNDS=${BENCH_ROUNDS:-1}
fi
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-1}
WORKERS=${BENCH_WORKERS:-1}
PIN=${BENCH_PIN:-auto}
WATCHES=${BENCH_WATCHES:-5000}
WAIT_IDLE=${BENCH_WAIT_IDLE:-0}
WATCH_ROUNDS=${BENCH_WATCH_ROUNDS:-2}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }

# ---- processes and cleanup ----

RUN=""
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
            printf 'bench: logs of the failed run are in %s\n' "$OUT/failed" >&2
        fi
        rm -rf "$RUN"
    fi
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

setup_tools() {
    tests/deps.sh
    if [ -n "${BENCH_BYLINE:-}" ]; then
        BYLINE=$(realpath "$BENCH_BYLINE")
        say "measuring $BYLINE (BENCH_BYLINE), not building"
        BYLINE_WHAT=$BYLINE
    else
        make -s build/byline || die "could not build build/byline"
        BYLINE=$ROOT/build/byline
        BYLINE_WHAT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        git diff --quiet HEAD -- src 2>/dev/null || BYLINE_WHAT="$BYLINE_WHAT+uncommitted"
    fi
    local want=$((2 * WATCHES + 1000)) hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    [ "$hard" -ge 20000 ] || [ "$hard" -ge "$want" ] || die "ulimit -Hn is $hard; the watch test needs $want"
    ulimit -n "$(( hard < 65536 ? hard : 65536 ))"
    NCPU=$(nproc)
    local secs=${DURATION%s}
    [[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be whole seconds, e.g. 10s"
    [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number"
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
# implemented). $1 dir, $2 listen port, $3 upstream port; sets BL_TOKEN.
byline_config_by_hand() {
    local d=$1
    new_token
    mkdir -p "$d"
    cat >"$d/byline.yaml" <<EOF
# written by bench/run.sh
listen: 127.0.0.1:$2
workers: $WORKERS
tls: { cert: $RUN/pki/gateway.crt, key: $RUN/pki/gateway.key, ca: $RUN/pki/ca.crt }
audit: { dir: audit }
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
# top-level "workers:" and a block "limits:" with two-space indented keys.
byline_tune() {
    local y=$1/byline.yaml
    grep -q '^workers:' "$y" && grep -q '^  max_connections:' "$y" && grep -q '^  drain_timeout:' "$y" ||
        die "byline init's byline.yaml changed shape; update byline_tune in bench/run.sh"
    sed -i -e "s/^workers:.*/workers: $WORKERS/" \
        -e "s/^  max_connections:.*/  max_connections: $((WATCHES + 1000))/" \
        -e "s/^  drain_timeout:.*/  drain_timeout: 1s/" "$y"
}

# $1 dir, $2 listen port, $3 upstream port; sets BL_TOKEN, BL_CA, CONFIG_HOW.
byline_config() {
    local d=$1 out
    if out=$("$BYLINE" init --dir "$d" --upstream "https://127.0.0.1:$3" --upstream-ca "$RUN/pki/ca.crt" \
        --upstream-token-file "$RUN/up.token" --listen "127.0.0.1:$2" 2>&1); then
        CONFIG_HOW="byline init"
        byline_tune "$d"
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

# $1 dir, $2 port, $3 name; sets BL_PID.
start_byline() {
    start_server "$RUN/$3.log" "$BYLINE" serve --dir "$1"
    BL_PID=$BG_PID
    wait_port "$2" "$BL_PID" "byline" "$RUN/$3.log"
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

# Sum of "requests" over wrk outputs, per setup (for the audit count).
declare -A SENT
# $1 setup, $2 port, $3 token, $4 pid to watch, $5 body key, $6 path, $7 round.
measure() {
    local setup=$1 port=$2 token=$3 pid=$4 body=$5 path=$6 f n warm=$WARMUP
    f=$OUT/raw/$setup.$body.r$7
    [ "$7" = 1 ] || warm=1s
    say "round $7/$ROUNDS: $setup $body: warm-up $warm, then ${ROUND_SECS}s"
    run_wrk "$warm" "$port" "$path" "$token" "$f.warmup.txt"
    python3 "$BENCH/cpu.py" snap "$RUN/cpu.before"
    run_wrk "${ROUND_SECS}s" "$port" "$path" "$token" "$f.txt"
    python3 "$BENCH/cpu.py" snap "$RUN/cpu.after"
    python3 "$BENCH/cpu.py" diff "$RUN/cpu.before" "$RUN/cpu.after" --root $$ \
        --ours-cpu "$(awk '{ print $1 + $2 }' "$f.txt.time")" --label "$UP_PID=upstream" \
        --label "$NGX_PID=nginx" --label "$BL_PID=byline" >"$f.cpu.json"
    warn_other_cpu "$f.cpu.json" "during $setup $body round $7"
    kill -0 "$pid" 2>/dev/null || die "$setup died under load (see $OUT/raw/)"
    for n in "$f.warmup.txt" "$f.txt"; do
        python3 - "$n" "$setup $body" <<'EOF' || exit 1
import json, sys
r = json.loads(open(sys.argv[1]).read().split("WRKJSON ", 1)[1].splitlines()[0])
bad = {k: r[k] for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts") if r[k]}
if bad or r["requests"] == 0:
    sys.exit(f"bench: FAIL: {sys.argv[2]}: {r['requests']} requests, errors {bad} ({sys.argv[1]})")
EOF
        SENT[$setup]=$(( ${SENT[$setup]:-0} + $(sed -n 's/^WRKJSON {"requests":\([0-9]*\),.*/\1/p' "$n") ))
    done
    grep '^WRKJSON ' "$f.txt" | cut -d' ' -f2- >"$f.json"
}

# byline writes one "result" entry per request (in ledger segments); wrk counts only answers it
# read before its clock stopped, so up to $CONNS per wrk run may be extra.
check_audit() {
    local log=$RUN/ledger-all.jsonl sent=${SENT[byline]} results allowed runs=$((ROUNDS * 4)) slack
    cat "$1"/audit/ledger-*.jsonl >"$log" 2>/dev/null || die "no audit ledger in $1/audit"
    results=$(grep -c '"kind":"result"' "$log" || true)
    allowed=$(grep '"kind":"result"' "$log" | grep -c '"result":"allowed","status":200' || true)
    slack=$((runs * CONNS + 2))  # +2: the pre-flight check's requests
    grep '"kind":"result"' "$log" | grep -v '"result":"allowed","status":200' >"$OUT/raw/audit-other.jsonl" || true
    say "audit: $results result records ($allowed allowed with 200) for $sent requests wrk counted"
    [ "$allowed" = "$results" ] || say "audit: the other $((results - allowed)) are in $OUT/raw/audit-other.jsonl"
    [ "$results" -ge "$sent" ] && [ "$results" -le $((sent + slack)) ] ||
        die "audit log has $results result records for $sent requests (allowed slack $slack)"
    AUDIT_JSON="{\"results\":$results,\"allowed_200\":$allowed,\"wrk_requests\":$sent,\"lines\":$(wc -l <"$log")}"
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
    grep -q 'failed=0' <<<"$ready" || die "$name: some watches failed ($ready): $(head -5 "$RUN/$tag.watchers.err")"
    sleep 1  # let allocations settle
    kill -0 "$pid" 2>/dev/null || die "$name died holding watches"
    during=$($WM_RSS "$pid")
    fds_during=$($WM_FDS "$pid")
    exec {HOLD_FD}>&-
    HOLD_FD=""
    wait "$wpid" || die "watchers for $name failed: $(cat "$RUN/$tag.watchers.err")"
    closed=$(grep '^CLOSED' "$RUN/$tag.watchers.out" || echo "CLOSED dropped=?")
    grep -q 'dropped=0' <<<"$closed" || die "$name dropped idle watches: $closed"
    sleep 1
    kill -0 "$pid" 2>/dev/null || die "$name died after the watches closed"
    after=$($WM_RSS "$pid")
    say "$name round $6: ${ready#READY }; RSS ${during} kB, ${after} kB after they closed"
    WM_ROUNDS+=("$(printf '{"rss_during_kb":%d,"rss_after_kb":%d,"fds_during":%d,"ready":"%s"}' \
        "$during" "$after" "$fds_during" "$ready")")
}

# $1 name, $2 port, $3 pid, $4 "byline" or "nginx", $5 token or "", $6 the
# CA that verifies the endpoint, $7 rounds; sets WM_JSON.
watch_memory() {
    local name=$1 tf="" before fds_before r
    WM_RSS=rss_kb WM_FDS=fd_count WM_ROUNDS=()
    if [ "$4" = nginx ]; then WM_RSS=nginx_rss_kb WM_FDS=nginx_fd_count; fi
    if [ -n "$5" ]; then tf=$RUN/$name.watch.token; printf '%s\n' "$5" >"$tf"; fi
    sleep 1
    before=$($WM_RSS "$3")
    fds_before=$($WM_FDS "$3")
    say "$name: RSS $before kB before the watches"
    for r in $(seq "$7"); do watch_round "$name" "$2" "$3" "$6" "$tf" "$r"; done
    WM_JSON=$(printf '{"watches":%d,"rss_before_kb":%d,"fds_before":%d,"rounds":[%s]}' \
        "$WATCHES" "$before" "$fds_before" "$(IFS=,; echo "${WM_ROUNDS[*]}")")
}

watch_test() {
    local wup=$1 blp=$2 ngp=$3 ngp2=$4 wup_pid bl_rss ng_rss
    say "idle watches: $WATCHES through byline, then through nginx"
    start_server "$RUN/watch-upstream.log" python3 "$BENCH/watch_upstream.py" --port "$wup" \
        --cert "$RUN/pki/upstream.crt" --key "$RUN/pki/upstream.key"
    wup_pid=$BG_PID
    wait_port "$wup" "$wup_pid" "watch upstream" "$RUN/watch-upstream.log"
    byline_config "$RUN/byline-watch" "$blp" "$wup"
    start_byline "$RUN/byline-watch" "$blp" byline-watch
    watch_memory byline "$blp" "$BL_PID" byline "$BL_TOKEN" "$BL_CA" "$WATCH_ROUNDS"
    bl_rss=$WM_JSON
    start_nginx_proxy nginx-watch "$wup" "$ngp" "$ngp2"
    check_byline_log "$RUN/byline-watch.log" byline-watch
    watch_memory nginx "$ngp" "$NGX_PID" nginx "" "$RUN/pki/ca.crt" 1
    ng_rss=$WM_JSON
    WATCH_JSON="{\"byline\":$bl_rss,\"nginx\":$ng_rss}"
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

main() {
    setup_tools
    RUN=$(mktemp -d /tmp/byline-bench.XXXXXX)
    rm -rf "$OUT/raw" "$OUT/failed"
    mkdir -p "$OUT/raw"
    check_idle
    make_pki
    read -r UP_PORT NG_PORT NGL_PORT BL_PORT WUP_PORT BLW_PORT NGW_PORT NGW2_PORT <<<"$(free_ports 8)"
    say "pin=$PIN workers=$WORKERS connections=$CONNS threads=$THREADS rounds=$ROUNDS x ${ROUND_SECS}s warm-up=$WARMUP"
    start_upstream
    start_nginx_proxy nginx "$UP_PORT" "$NG_PORT" "$NGL_PORT"
    byline_config "$RUN/byline" "$BL_PORT" "$UP_PORT"
    start_byline "$RUN/byline" "$BL_PORT" byline
    say "byline config: $CONFIG_HOW"

    preflight direct "$UP_PORT" "$UP_TOKEN"
    preflight nginx "$NG_PORT" "$BL_TOKEN"
    preflight nginx+log "$NGL_PORT" "$BL_TOKEN"
    preflight byline "$BL_PORT" "$BL_TOKEN" "$BL_CA"

    local body path round
    for round in $(seq "$ROUNDS"); do
        for body in cm pods; do
            [ $body = cm ] && path=$PATH_CM || path=$PATH_PODS
            measure direct "$UP_PORT" "$UP_TOKEN" "$UP_PID" $body "$path" "$round"
            measure nginx "$NG_PORT" "$BL_TOKEN" "$NGX_PID" $body "$path" "$round"
            measure nginx+log "$NGL_PORT" "$BL_TOKEN" "$NGX_PID" $body "$path" "$round"
            measure byline "$BL_PORT" "$BL_TOKEN" "$BL_PID" $body "$path" "$round"
        done
    done
    # Added latency without queueing: one connection at a time, so a
    # request never waits behind others (saturated p99 is mostly queue).
    local saved=$CONNS setup port token pid
    CONNS=1
    for setup in direct nginx nginx+log byline; do
        case $setup in
            direct) port=$UP_PORT token=$UP_TOKEN pid=$UP_PID ;;
            nginx) port=$NG_PORT token=$BL_TOKEN pid=$NGX_PID ;;
            nginx+log) port=$NGL_PORT token=$BL_TOKEN pid=$NGX_PID ;;
            byline) port=$BL_PORT token=$BL_TOKEN pid=$BL_PID ;;
        esac
        say "unloaded latency: $setup (1 connection, ${ROUND_SECS}s)"
        run_wrk 1s "$port" "$PATH_CM" "$token" "$OUT/raw/$setup.low.warmup.txt"
        run_wrk "${ROUND_SECS}s" "$port" "$PATH_CM" "$token" "$OUT/raw/$setup.low.txt"
        grep '^WRKJSON ' "$OUT/raw/$setup.low.txt" | cut -d' ' -f2- >"$OUT/raw/$setup.low.json"
        SENT[$setup]=$(( ${SENT[$setup]:-0} + $(sed -n 's/^WRKJSON {"requests":\([0-9]*\),.*/\1/p' "$OUT/raw/$setup.low.warmup.txt") ))
        SENT[$setup]=$(( ${SENT[$setup]:-0} + $(sed -n 's/^WRKJSON {"requests":\([0-9]*\),.*/\1/p' "$OUT/raw/$setup.low.txt") ))
    done
    CONNS=$saved
    check_audit "$RUN/byline"
    check_byline_log "$RUN/byline.log" byline

    WATCH_JSON=null
    [ "$WATCHES" -gt 0 ] && watch_test "$WUP_PORT" "$BLW_PORT" "$NGW_PORT" "$NGW2_PORT"

    cat >"$OUT/raw/meta.json" <<EOF
{"pin":"$PIN","workers":$WORKERS,"connections":$CONNS,"threads":$THREADS,"duration":"$DURATION",
 "rounds":$ROUNDS,"round_seconds":$ROUND_SECS,
 "warmup":"$WARMUP","cpus":$NCPU,"cpu_model":"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)",
 "byline_commit":"$BYLINE_WHAT",
 "nginx":"$(nginx -v 2>&1 | sed 's/.*nginx\///')","wrk":"$(wrk -v 2>&1 | head -1 | cut -d' ' -f2)",
 "config":"$CONFIG_HOW","bodies":"$(tr '\n' ';' <"$RUN/bodies.txt")",
 "audit":$AUDIT_JSON,"watch":$WATCH_JSON}
EOF
    python3 "$BENCH/report.py" "$OUT"
}

main "$@"
