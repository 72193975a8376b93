#!/usr/bin/env bash
# tests/cli/test_cli.sh - `byline init`, `identity` and `kubeconfig` end to end,
# judged by the real kubectl (1.27 and 1.33): the kubeconfig parses, kubectl's
# TLS verification accepts the generated chain (against `openssl s_server` and
# an HTTPS echo server that reports the token and client certificate it
# received), and a foreign CA is refused. The audit signing key pair init
# makes is judged by openssl. Ends with "N passed, N failed".
#
#   tests/cli/test_cli.sh [BYLINE]        (default build/byline)
# With valgrind installed, the commands also run under it (VALGRIND_BYLINE,
# default BYLINE; skipped for an ASan build, which valgrind cannot run).
set -u
cd "$(dirname "$0")/../.."
BYLINE=$(realpath "${1:-build/byline}")
KDIR=/usr/lib/google-cloud-sdk/bin
PASS=0
FAIL=0
T=$(mktemp -d /tmp/byline-cli-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
export HOME=$T/home KUBECONFIG=/dev/null
mkdir -p "$HOME"
unset BYLINE_TOKEN

ok()  { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/     /' | head -20; }
# expect NAME STATUS CMD...: runs CMD (stdout to $T/out, stderr to $T/err), wants exit STATUS.
expect() {
    local name=$1 want=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name"; else bad "$name (exit $rc, want $want)" "$(cat "$T/err")"; fi
}
# has NAME FILE PATTERN: FILE matches the extended regex PATTERN.
has()    { if grep -Eq -- "$3" "$2"; then ok "$1"; else bad "$1: no /$3/ in $2" "$(cat "$2")"; fi; }
hasnt()  { if grep -Eq -- "$3" "$2"; then bad "$1: /$3/ in $2" "$(cat "$2")"; else ok "$1"; fi; }
mode_is() { local m; m=$(stat -c %a "$2"); if [ "$m" = "$3" ]; then ok "$1"; else bad "$1: mode $m, want $3"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

[ -x "$BYLINE" ] || { echo "no byline binary at $BYLINE"; echo "0 passed, 1 failed"; exit 1; }
KUBECTLS=()
for v in 1.27 1.33; do [ -x "$KDIR/kubectl.$v" ] && KUBECTLS+=("$KDIR/kubectl.$v"); done
[ ${#KUBECTLS[@]} -gt 0 ] || bad "kubectl 1.27/1.33 not found in $KDIR"

printf 'upstream-secret\n' >"$T/up.token"; chmod 600 "$T/up.token"
PORT=$(free_port)
G=$T/gw

# ---- init ----
expect "init --help exits 0" 0 "$BYLINE" init --help
has "init --help prints usage on stdout" "$T/out" '^usage: byline init --dir DIR --upstream URL'
expect "init without --upstream is a usage error" 2 "$BYLINE" init --dir "$G"
expect "init with an http:// upstream is a usage error" 2 "$BYLINE" init --dir "$G" --upstream http://10.0.0.1
has "  ...and says why" "$T/err" 'must start with https://'
expect "init with an unknown option is a usage error" 2 "$BYLINE" init --dir "$G" --upstream https://a --bogus
expect "init with token and client cert is a usage error" 2 "$BYLINE" init --dir "$G" --upstream https://a \
    --upstream-token-file "$T/up.token" --upstream-cert "$T/up.token" --upstream-key "$T/up.token"
expect "init with a missing token file fails" 1 "$BYLINE" init --dir "$G" --upstream https://a --upstream-token-file "$T/nope"
[ ! -e "$G" ] && ok "  ...and writes nothing" || bad "  ...and writes nothing"
expect "init succeeds" 0 "$BYLINE" init --dir "$G" --upstream https://10.0.0.1:6443 \
    --upstream-token-file "$T/up.token" --listen "127.0.0.1:$PORT"
has "init names the files it wrote" "$T/out" "Wrote $G/byline.yaml"
has "init prints next steps" "$T/out" 'byline identity add'
has "init names the public key and origin auditors need" "$T/out" "^  public key  $G/audit-signing.pub, origin byline"
has "  ...and says what it is for" "$T/out" 'give both to auditors'
mode_is "DIR is 0700" "$G" 700
mode_is "byline.yaml is 0600" "$G/byline.yaml" 600
mode_is "tls/ca.key is 0600" "$G/tls/ca.key" 600
mode_is "tls/server.key is 0600" "$G/tls/server.key" 600
mode_is "audit/ is 0700" "$G/audit" 700
mode_is "identities.yaml is 0600" "$G/identities.yaml" 600
has "byline.yaml references the token file by absolute path" "$G/byline.yaml" "token_file: \"?$T/up.token"
has "byline.yaml explains its keys" "$G/byline.yaml" '^# The URL agents reach the gateway at'
mode_is "audit-signing.key is 0600" "$G/audit-signing.key" 600
mode_is "audit-signing.pub is 0644" "$G/audit-signing.pub" 644
openssl pkey -in "$G/audit-signing.key" -noout -text >"$T/out" 2>&1
has "audit-signing.key is an Ed25519 private key (openssl)" "$T/out" '^ED25519 Private-Key:'
openssl pkey -in "$G/audit-signing.key" -pubout >"$T/pub" 2>&1
cmp -s "$T/pub" "$G/audit-signing.pub" && ok "audit-signing.pub is the key's own public key (SPKI PEM)" \
    || bad "audit-signing.pub is the key's own public key" "$(cat "$T/pub" "$G/audit-signing.pub")"
has "byline.yaml pins audit.origin" "$G/byline.yaml" '^  origin: "?byline(/[A-Za-z0-9.-]+)?"?$'
has "byline.yaml lists the ledger keys as comments" "$G/byline.yaml" '^  # space_refuse: 2% '
has "byline.yaml lists metrics.listen as a comment" "$G/byline.yaml" '^#   listen: 127\.0\.0\.1:9402$'
has "byline.yaml lists impersonate as a comment" "$G/byline.yaml" '^    # impersonate: false$'
openssl verify -CAfile "$G/tls/ca.crt" -purpose sslserver "$G/tls/server.crt" >"$T/out" 2>&1 \
    && ok "server cert verifies against the gateway CA (sslserver)" || bad "server cert verify" "$(cat "$T/out")"
openssl x509 -in "$G/tls/server.crt" -noout -ext subjectAltName >"$T/out" 2>&1
has "server cert SANs include localhost, 127.0.0.1 and ::1" "$T/out" 'DNS:localhost.*IP Address:127.0.0.1.*IP Address:0:0:0:0:0:0:0:1'
CA_SUM=$(sha256sum <"$G/tls/ca.crt"); YAML_SUM=$(sha256sum <"$G/byline.yaml"); SRV_SUM=$(sha256sum <"$G/tls/server.crt")
SIGN_SUM=$(cat "$G/audit-signing.key" "$G/audit-signing.pub" | sha256sum)
expect "init again without --force fails" 1 "$BYLINE" init --dir "$G" --upstream https://10.9.9.9
has "  ...and says --force" "$T/err" 'use --force'
[ "$(sha256sum <"$G/byline.yaml")" = "$YAML_SUM" ] && ok "  ...and leaves byline.yaml alone" || bad "  ...and leaves byline.yaml alone"
expect "init --force rewrites" 0 "$BYLINE" init --dir "$G" --upstream https://10.0.0.1:6443 \
    --upstream-token-file "$T/up.token" --listen "127.0.0.1:$PORT" --force
[ "$(sha256sum <"$G/tls/ca.crt")" = "$CA_SUM" ] && ok "  ...keeping the CA" || bad "  ...keeping the CA"
[ "$(sha256sum <"$G/tls/server.crt")" != "$SRV_SUM" ] && ok "  ...with a new serving cert" || bad "  ...with a new serving cert"
[ "$(cat "$G/audit-signing.key" "$G/audit-signing.pub" | sha256sum)" = "$SIGN_SUM" ] \
    && ok "  ...keeping the audit signing key pair" || bad "  ...keeping the audit signing key pair"
has "  ...and says so" "$T/out" "audit key   $G/audit-signing.key \\(kept"
mv "$G/audit-signing.pub" "$T/saved.pub"
expect "init --force with half a signing key pair fails" 1 "$BYLINE" init --dir "$G" --upstream https://10.0.0.1:6443 \
    --upstream-token-file "$T/up.token" --listen "127.0.0.1:$PORT" --force
has "  ...and says to restore the pair" "$T/err" 'audit-signing.key exists without .*audit-signing.pub: restore the pair'
[ ! -e "$G/audit-signing.pub" ] && ok "  ...without making a new public key" || bad "  ...without making a new public key"
mv "$T/saved.pub" "$G/audit-signing.pub"

# ---- identity ----
expect "identity add prints a token" 0 "$BYLINE" identity add agent-x --group deployers --dir "$G"
TOKEN=$(cat "$T/out")
[ "$(wc -l <"$T/out")" -eq 1 ] && [[ "$TOKEN" =~ ^byl_[A-Za-z0-9_-]{43}$ ]] \
    && ok "  ...exactly byl_ + 43 base64url characters and a newline on stdout" || bad "  ...token format: [$TOKEN]"
has "  ...and says on stderr it is shown once" "$T/err" 'shown only once'
HASH=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
has "identities.yaml stores the token's SHA-256" "$G/identities.yaml" "token_sha256: \"?$HASH"
hasnt "identities.yaml never stores the token" "$G/identities.yaml" "$TOKEN"
mode_is "identities.yaml stays 0600" "$G/identities.yaml" 600
TOKEN2=$("$BYLINE" identity add agent-y --dir "$G" 2>/dev/null)
[ -n "$TOKEN2" ] && [ "$TOKEN2" != "$TOKEN" ] && ok "a second identity gets a different token" || bad "second token"
expect "identity add of an existing name fails" 1 "$BYLINE" identity add agent-x --dir "$G"
has "  ...and says so" "$T/err" 'already exists'
expect "identity add with a bad name is a usage error" 2 "$BYLINE" identity add Agent_X --dir "$G"
expect "identity add without --dir is a usage error" 2 "$BYLINE" identity add agent-z
expect "identity list" 0 "$BYLINE" identity list --dir "$G"
has "  ...shows name, groups and credential kind" "$T/out" '^agent-x +deployers +token '
hasnt "  ...never a secret" "$T/out" 'byl_|[0-9a-f]{64}'

# ---- kubeconfig (token) ----
expect "kubeconfig without a token fails" 1 "$BYLINE" kubeconfig agent-x --dir "$G"
has "  ...and says where to pass it" "$T/err" 'BYLINE_TOKEN'
BYLINE_TOKEN=$TOKEN2 expect "kubeconfig with another identity's token fails" 1 "$BYLINE" kubeconfig agent-x --dir "$G"
expect "kubeconfig for an unknown identity fails" 1 "$BYLINE" kubeconfig nobody --dir "$G"
BYLINE_TOKEN=$TOKEN expect "kubeconfig with \$BYLINE_TOKEN" 0 "$BYLINE" kubeconfig agent-x --dir "$G"
cp "$T/out" "$T/kc-env.yaml"
printf '%s\n' "$TOKEN" >"$T/agent.token"
expect "kubeconfig with --token-file" 0 "$BYLINE" kubeconfig agent-x --dir "$G" --token-file "$T/agent.token"
cmp -s "$T/out" "$T/kc-env.yaml" && ok "  ...same kubeconfig either way" || bad "  ...same kubeconfig either way"
KC=$T/kc-env.yaml
expect "kubeconfig --connection default" 0 "$BYLINE" kubeconfig agent-x --dir "$G" --token-file "$T/agent.token" --connection default
cp "$T/out" "$T/kc-prefixed.yaml"
has "  ...routes through /k8s/default" "$T/kc-prefixed.yaml" "server: \"https://127.0.0.1:$PORT/k8s/default\""
expect "kubeconfig --connection nope fails" 1 "$BYLINE" kubeconfig agent-x --dir "$G" --token-file "$T/agent.token" --connection nope

for K in "${KUBECTLS[@]}"; do
    v=${K##*kubectl.}
    expect "kubectl $v: config view accepts it" 0 "$K" --kubeconfig "$KC" config view
    expect "kubectl $v: current-context" 0 "$K" --kubeconfig "$KC" config current-context
    has "  ...is agent-x@byline-default" "$T/out" '^agent-x@byline-default$'
    "$K" --kubeconfig "$KC" config view --raw -o jsonpath='{.users[0].user.token} {.clusters[0].cluster.server} {.contexts[0].context.cluster}' >"$T/out" 2>&1
    has "kubectl $v: sees the token, server and cluster" "$T/out" "^$TOKEN https://127.0.0.1:$PORT byline-default\$"
done

# The generated chain against real TLS servers.
openssl s_server -www -accept "$PORT" -cert "$G/tls/server.crt" -key "$G/tls/server.key" -quiet </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$PORT" || bad "openssl s_server did not start"
for K in "${KUBECTLS[@]}"; do
    v=${K##*kubectl.}
    expect "kubectl $v: TLS to openssl s_server with the gateway cert" 0 "$K" --kubeconfig "$KC" get --raw / --request-timeout=10s
    has "  ...got s_server's page" "$T/out" 's_server'
done
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null; unset 'PIDS[-1]'

# A kubeconfig from another gateway (another CA) must be refused by kubectl.
"$BYLINE" init --dir "$T/gw2" --upstream https://10.0.0.1 --listen "127.0.0.1:$PORT" >/dev/null 2>&1
T3=$("$BYLINE" identity add agent-x --dir "$T/gw2" 2>/dev/null)
BYLINE_TOKEN=$T3 "$BYLINE" kubeconfig agent-x --dir "$T/gw2" >"$T/kc-foreign.yaml" 2>/dev/null

LOG=$T/echo.log
python3 tests/cli/echo_server.py "$PORT" "$G/tls/server.crt" "$G/tls/server.key" "$G/tls/ca.crt" "$LOG" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$PORT" || bad "echo server did not start"

expect "identity add --cert" 0 "$BYLINE" identity add agent-c --cert --group ops --dir "$G"
[ ! -s "$T/out" ] && ok "  ...prints no token" || bad "  ...prints no token"
mode_is "  ...key is 0600" "$G/identities/agent-c.key" 600
openssl x509 -in "$G/identities/agent-c.crt" -noout -subject >"$T/out" 2>&1
has "  ...certificate subject O=ops, CN=agent-c" "$T/out" 'O ?= ?ops, CN ?= ?agent-c'
openssl verify -CAfile "$G/tls/ca.crt" -purpose sslclient "$G/identities/agent-c.crt" >"$T/out" 2>&1 \
    && ok "  ...verifies as a client certificate" || bad "  ...verifies as a client certificate" "$(cat "$T/out")"
openssl verify -CAfile "$G/tls/ca.crt" -purpose sslclient "$G/tls/server.crt" >"$T/out" 2>&1 \
    && bad "the serving certificate must not pass as a client certificate" || ok "the serving certificate does not pass as a client certificate"
expect "kubeconfig for the cert identity" 0 "$BYLINE" kubeconfig agent-c --dir "$G"
cp "$T/out" "$T/kc-cert.yaml"
has "  ...embeds client-certificate-data" "$T/kc-cert.yaml" '^      client-certificate-data: [A-Za-z0-9+/=]+$'
has "  ...and client-key-data" "$T/kc-cert.yaml" '^      client-key-data: [A-Za-z0-9+/=]+$'
expect "kubeconfig --token-file for the cert identity fails" 1 "$BYLINE" kubeconfig agent-c --dir "$G" --token-file "$T/agent.token"

for K in "${KUBECTLS[@]}"; do
    v=${K##*kubectl.}
    expect "kubectl $v: token kubeconfig reaches the echo server" 0 "$K" --kubeconfig "$KC" get --raw /healthz --request-timeout=10s
    has "  ...sending Authorization: Bearer <token>" "$T/out" "^path=/healthz\\?[^ ]* authorization=Bearer $TOKEN cn=\$"
    : >"$LOG"
    expect "kubectl $v: version through the prefixed kubeconfig" 0 "$K" --kubeconfig "$T/kc-prefixed.yaml" version --request-timeout=10s
    has "  ...requests /k8s/default/version" "$LOG" '^path=/k8s/default/version[?]'
    : >"$LOG"
    expect "kubectl $v: get --raw through the prefixed kubeconfig" 0 "$K" --kubeconfig "$T/kc-prefixed.yaml" get --raw /version --request-timeout=10s
    # kubectl's --raw (client-go RequestURI) replaces the server's path: the
    # proxy cannot see /k8s/<connection> on such requests. Keep this visible.
    has "  ...drops the /k8s/default prefix (kubectl behaviour)" "$LOG" '^path=/version[?]'
    expect "kubectl $v: cert kubeconfig" 0 "$K" --kubeconfig "$T/kc-cert.yaml" get --raw /whoami --request-timeout=10s
    has "  ...presents the client certificate CN=agent-c" "$T/out" '^path=/whoami[?][^ ]* authorization= cn=agent-c$'
    expect "kubectl $v: refuses a gateway signed by another CA" 1 "$K" --kubeconfig "$T/kc-foreign.yaml" get --raw / --request-timeout=10s
    has "  ...as an unknown authority" "$T/err" 'certificate signed by unknown authority'
done

# ---- remove ----
expect "identity remove" 0 "$BYLINE" identity remove agent-x --dir "$G"
hasnt "  ...gone from identities.yaml" "$G/identities.yaml" 'agent-x'
has "  ...others kept" "$G/identities.yaml" 'agent-y'
expect "  ...kubeconfig for it now fails" 1 "$BYLINE" kubeconfig agent-x --dir "$G" --token-file "$T/agent.token"
expect "identity remove of an unknown name fails" 1 "$BYLINE" identity remove agent-x --dir "$G"
expect "identity remove of a cert identity" 0 "$BYLINE" identity remove agent-c --dir "$G"
[ ! -e "$G/identities/agent-c.key" ] && [ -e "$G/identities/agent-c.crt.removed" ] \
    && ok "  ...deletes the key, keeps the certificate as a record" || bad "  ...retire files"
expect "  ...re-adding the name with --cert is refused while the old cert is valid" 1 "$BYLINE" identity add agent-c --cert --dir "$G"
has "  ...saying why" "$T/err" 'has not expired'

# ---- expiry, revoke, rotate, list ----
expect "identity add --expires 90d" 0 "$BYLINE" identity add agent-e --expires 90d --dir "$G"
has "  ...stores expires as a UTC time" "$G/identities.yaml" '^    expires: "?20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z'
expect "identity add --expires with a past time is a usage error" 2 "$BYLINE" identity add agent-p --expires 2020-01-01T00:00:00Z --dir "$G"
has "  ...saying why" "$T/err" 'must be in the future'
expect "identity add --expires 90 (no unit) is a usage error" 2 "$BYLINE" identity add agent-p --expires 90 --dir "$G"
expect "identity add --cert --expires 10d" 0 "$BYLINE" identity add agent-ce --cert --expires 10d --dir "$G"
has "  ...says the certificate is valid 10 days" "$T/err" 'valid 10 days'
END=$(openssl x509 -in "$G/identities/agent-ce.crt" -noout -enddate | cut -d= -f2)
DAYS=$(( ($(date -d "$END" +%s) - $(date +%s)) / 86400 ))
[ "$DAYS" -ge 9 ] && [ "$DAYS" -le 10 ] && ok "  ...its notAfter is the expiry (in $DAYS days)" || bad "  ...notAfter $END"
expect "identity revoke" 0 "$BYLINE" identity revoke agent-ce --reason "laptop lost" --dir "$G"
has "  ...records when" "$G/identities.yaml" '^    revoked: "?20[0-9-]{8}T[0-9:]{8}Z'
has "  ...and why" "$G/identities.yaml" '^    revoked_reason: "?laptop lost'
has "  ...keeps the record" "$G/identities.yaml" 'name: "?agent-ce'
[ ! -e "$G/identities/agent-ce.key" ] && ok "  ...deletes the issued key" || bad "  ...deletes the issued key"
expect "identity revoke again is fine" 0 "$BYLINE" identity revoke agent-ce --dir "$G"
has "  ...and says it was already revoked" "$T/err" 'already revoked at'
expect "identity revoke of an unknown name fails" 1 "$BYLINE" identity revoke nobody --dir "$G"
expect "identity revoke with a control character in --reason is a usage error" 2 "$BYLINE" identity revoke agent-e --reason $'a\nb' --dir "$G"
expect "identity rotate of a revoked identity fails" 1 "$BYLINE" identity rotate agent-ce --dir "$G"
expect "identity rotate of an identity with an expiry needs --expires" 1 "$BYLINE" identity rotate agent-e --dir "$G"
OLDHASH=$(grep -A3 'name: "\?agent-e' "$G/identities.yaml" | grep token_sha256)
expect "identity rotate --expires 30d" 0 "$BYLINE" identity rotate agent-e --expires 30d --dir "$G"
NEWTOK=$(cat "$T/out")
[[ "$NEWTOK" =~ ^byl_[A-Za-z0-9_-]{43}$ ]] && ok "  ...prints a new token" || bad "  ...prints a new token: [$NEWTOK]"
has "  ...stores its hash" "$G/identities.yaml" "token_sha256: \"?$(printf '%s' "$NEWTOK" | sha256sum | cut -d' ' -f1)"
hasnt "  ...and not the old one" "$G/identities.yaml" "${OLDHASH#*token_sha256: }"
expect "identity list with the new columns" 0 "$BYLINE" identity list --dir "$G"
has "  ...header" "$T/out" '^NAME +GROUPS +CREDENTIALS +CREATED +EXPIRES +REVOKED +LAST USED +SOURCE$'
has "  ...a revoked identity shows when" "$T/out" '^agent-ce +- +cert_cn +[0-9T:Z-]+ +[0-9T:Z-]+ +20[0-9T:Z-]+ +- +identities.yaml$'
mkdir -p "$G/state" && printf '{"last_used":{"agent-e":"2026-11-28T10:00:00Z"},"version":1}\n' >"$G/state/last-used.json"
expect "identity list --json" 0 "$BYLINE" identity list --json --dir "$G"
python3 - "$T/out" <<'PY' && ok "  ...is JSON with expires, revoked, reason and last used" || bad "  ...JSON" "$(cat "$T/out")"
import json, sys
ids = {i["name"]: i for i in json.load(open(sys.argv[1]))}
e, c = ids["agent-e"], ids["agent-ce"]
assert e["expires"] and e["revoked"] is None and e["expired"] is False and e["last_used"] == "2026-11-28T10:00:00Z"
assert c["revoked"] and c["revoked_reason"] == "laptop lost" and c["credentials"] == "cert_cn" and c["last_used"] is None
PY
printf 'not json' >"$G/state/last-used.json"
expect "identity list with a damaged last-used file still lists" 0 "$BYLINE" identity list --dir "$G"
has "  ...and says the file is damaged" "$T/err" 'not a byline last-used state file'
rm -rf "$G/state"
expect "identity list --reason is a usage error" 2 "$BYLINE" identity list --reason x --dir "$G"

# ---- a hand-edited error is reported with its position ----
sed -i 's/^workers: 1$/workers: 100/' "$G/byline.yaml"
expect "a bad byline.yaml fails the commands" 1 "$BYLINE" identity list --dir "$G"
has "  ...with file:line:col" "$T/err" "$G/byline.yaml:[0-9]+:10: workers: 100 is out of range \\(1..64\\)"
sed -i 's/^workers: 100$/workers: 1/' "$G/byline.yaml"

# ---- the audit signing key and the keys init wrote as comments ----
chmod 640 "$G/audit-signing.key"
expect "an audit signing key others can read fails the commands" 1 "$BYLINE" identity list --dir "$G"
has "  ...saying chmod 600" "$T/err" "signing_key: $G/audit-signing.key is open to other users.*chmod 600"
chmod 600 "$G/audit-signing.key"
cp "$G/audit-signing.pub" "$T/saved.pub"
openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout >"$G/audit-signing.pub" 2>/dev/null
expect "a public key that is not the signing key's fails the commands" 1 "$BYLINE" identity list --dir "$G"
has "  ...naming both" "$T/err" "signing_pub: $G/audit-signing.pub is not the public key of $G/audit-signing.key"
cp "$T/saved.pub" "$G/audit-signing.pub"
# Every commented key, uncommented, is valid as written.
G4=$T/gw4
"$BYLINE" init --dir "$G4" --upstream https://10.0.0.1 --upstream-token-file "$T/up.token" >/dev/null 2>&1
sed -E -i 's/^( *)# ((signing_key|signing_pub|sync|commit_delay|segment_size|space_warn|space_refuse|level|body_max|capture_max|impersonate): )/\1\2/; s/^# (metrics:)$/\1/; s/^#   (listen: )/  \1/' "$G4/byline.yaml"
has "  (the comments are uncommented)" "$G4/byline.yaml" '^  capture_max: 0 '
has "  (metrics too)" "$G4/byline.yaml" '^metrics:$'
expect "init's commented keys load once uncommented" 0 "$BYLINE" identity list --dir "$G4"

# ---- policy check, config check ----
GP=$T/gwp
"$BYLINE" init --dir "$GP" --upstream https://10.0.0.1 --upstream-token-file "$T/up.token" >/dev/null 2>&1
"$BYLINE" identity add agent-reporting --group readers --dir "$GP" >/dev/null 2>&1
has "init writes a least-privilege policy.yaml" "$GP/policy.yaml" '^  - name: discovery$'
mode_is "  ...0600" "$GP/policy.yaml" 600
has "  ...included from byline.yaml" "$GP/byline.yaml" '^    - policy.yaml$'
expect "config check --help" 0 "$BYLINE" config check --help
has "  ...prints usage" "$T/out" '^usage: byline config check --dir DIR'
expect "config check without --dir is a usage error" 2 "$BYLINE" config check
expect "config check: init's config is valid" 0 "$BYLINE" config check --dir "$GP"
has "  ...one rule (discovery only)" "$T/out" 'ok: 1 connection\(s\), 1 identities, 1 policy rule\(s\)'
expect "policy check: a fresh identity may not read (default deny)" 1 "$BYLINE" policy check --dir "$GP" \
    --as agent-reporting -- kubectl get pods -n web
has "  ...rule default-deny" "$T/out" '^rule: +default-deny \(no rule allows it\)$'
has "  ...the message says no rule allows it" "$T/out" \
    '^message: +byline: agent-reporting may not list pods in namespace web: no rule allows it \(default deny\)$'
install -m 600 scripts/demo-policy.yaml "$GP/demo-policy.yaml"
sed -i "s#^    - policy.yaml\$#&\n    - demo-policy.yaml#" "$GP/byline.yaml"
expect "config check: with the demo's rules" 0 "$BYLINE" config check --dir "$GP"
has "  ...seven rules" "$T/out" '1 identities, 7 policy rule\(s\)'
expect "policy check --help" 0 "$BYLINE" policy check --help
has "  ...prints usage" "$T/out" '^usage: byline policy check --dir DIR --as NAME'
expect "policy check: agent-reporting may not delete" 1 "$BYLINE" policy check --dir "$GP" --as agent-reporting \
    -- kubectl delete pod x -n web
has "  ...the request" "$T/out" '^request: +DELETE /api/v1/namespaces/web/pods/x$'
has "  ...denied" "$T/out" '^decision: +denied$'
has "  ...by the rule, with where it is written" "$T/out" '^rule: +reporting-read-only \(.*/gwp/demo-policy.yaml:[0-9]+:[0-9]+\)$'
has "  ...and the agent's message" "$T/out" \
    '^message: +byline: agent-reporting may not delete pods in namespace web \(rule reporting-read-only\)$'
expect "policy check --request: a read is allowed" 0 "$BYLINE" policy check --dir "$GP" --as agent-reporting \
    --request 'GET /api/v1/namespaces/web/pods?limit=500'
has "  ...by reporting-reads" "$T/out" '^rule: +reporting-reads '
expect "policy check --request: a Secret is not" 1 "$BYLINE" policy check --dir "$GP" --as agent-reporting \
    --request 'GET /api/v1/namespaces/web/secrets/db'
has "  ...reporting-no-secrets" "$T/out" '^rule: +reporting-no-secrets '
expect "policy check: exec cat /var/log/app.log is allowed" 0 "$BYLINE" policy check --dir "$GP" \
    --as agent-reporting -- kubectl exec api-0 -n web -- cat /var/log/app.log
has "  ...kubectl GETs the pod, then execs" "$T/out" '^request: +POST /api/v1/namespaces/web/pods/api-0/exec\?command=cat&command=%2Fvar%2Flog%2Fapp.log'
expect "policy check: exec cat /var/log/../../etc/shadow is not" 1 "$BYLINE" policy check --dir "$GP" \
    --as agent-reporting -- kubectl exec api-0 -n web -- cat /var/log/../../etc/shadow
expect "policy check: a WebSocket exec (GET) is judged as the SPDY one" 1 "$BYLINE" policy check --dir "$GP" \
    --as agent-reporting --request 'GET /api/v1/namespaces/web/pods/api-0/exec?command=sh&stdin=true'
expect "policy check: an unregistered name with --group" 1 "$BYLINE" policy check --dir "$GP" --as agent-new \
    --group deployers -- kubectl scale deployment/api --replicas=2 -n web
has "  ...says it is not registered" "$T/err" 'agent-new is not a registered identity'
expect "policy check: kubectl apply -f is refused clearly" 2 "$BYLINE" policy check --dir "$GP" --as agent-reporting \
    -- kubectl apply -f x.yaml
has "  ...saying why and what to use" "$T/err" 'reads manifests, which policy check does not: give each request with --request'
expect "policy check: an unknown type is refused" 2 "$BYLINE" policy check --dir "$GP" --as agent-reporting \
    -- kubectl get widgets
expect "policy check: without --as is a usage error" 2 "$BYLINE" policy check --dir "$GP" --request 'GET /api'
expect "policy check: --request and a kubectl line is a usage error" 2 "$BYLINE" policy check --dir "$GP" \
    --as agent-reporting --request 'GET /api' -- kubectl get pods
expect "policy check: an unknown connection is a usage error" 2 "$BYLINE" policy check --dir "$GP" \
    --as agent-reporting --connection nope --request 'GET /api'
expect "policy check: a path byline refuses is not allowed" 1 "$BYLINE" policy check --dir "$GP" \
    --as agent-reporting --request 'GET /api/v1/namespaces/web/pods/%2e%2e'
has "  ...the parser's reason" "$T/out" '^decision: +refused \(byline answers 400'
printf 'rules:\n  - name: a\n    effect: maybe\n  - name: b\n    effect: allow\n    verbs: [exec]\n' >"$GP/bad.yaml"
sed -i "s#^    - policy.yaml\$#&\n    - bad.yaml#" "$GP/byline.yaml"
expect "config check: errors in an included file" 1 "$BYLINE" config check --dir "$GP"
has "  ...every one, with file:line:col" "$T/err" "/gwp/bad.yaml:3:13: effect: expected allow, deny or review"
has "  ...not only the first" "$T/err" '/gwp/bad.yaml:6:13: verbs: "exec" is not a verb'
# The starter policy's examples, uncommented, are valid as written.
sed -i -e "/^    - bad.yaml\$/d" -e "/demo-policy.yaml/d" "$GP/byline.yaml"
sed -i -E 's/^  # (- |  )/  \1/' "$GP/policy.yaml"
expect "init's example rules load once uncommented" 0 "$BYLINE" config check --dir "$GP"
has "  ...all of them" "$T/out" '1 identities, 7 policy rule\(s\)'

# ---- review (docs/POLICY.md "Review") ----
# Only the gateway opens reviews; here a pending one is written into the
# store the CLI created (its schema is src/review/store.c's).
GR=$T/gwr
"$BYLINE" init --dir "$GR" --upstream https://10.0.0.1 --upstream-token-file "$T/up.token" >/dev/null 2>&1
for who in "agent-deploybot --group deployers --group reviewers" "alice --group reviewers" "bob --group ops"; do
    # shellcheck disable=SC2086
    "$BYLINE" identity add $who --dir "$GR" >/dev/null 2>&1
done
expect "review --help" 0 "$BYLINE" review --help
has "  ...prints usage" "$T/out" '^usage: byline review list +--dir DIR'
expect "review without a subcommand is a usage error" 2 "$BYLINE" review
expect "review list without --dir is a usage error" 2 "$BYLINE" review list
expect "review list: none yet" 0 "$BYLINE" review list --dir "$GR"
has "  ...a header only" "$T/out" '^ID +STATE +IDENTITY'
mode_is "  ...the store is 0600" "$GR/state/reviews.db" 600
mode_is "  ...in a 0700 state directory" "$GR/state" 700
python3 - "$GR/state/reviews.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
for rid, who, at in (("r-7k2m9x4q1z", "agent-deploybot", now), ("r-00000000zz", "agent-deploybot", now - 2 * 3600 * 1000)):
    db.execute("INSERT INTO reviews(id, identity, connection, rule, action, command_key, key_sha256, record,"
               " requested_ms, state) VALUES(?,?,?,?,?,?,?,?,?,'pending')",
               (rid, who, "default", "prod-deletes", "kubectl delete pod/x -n web", "k", "0" * 64,
                "01900000-0000-7000-8000-000000000001", at))
db.commit()
PY
expect "review list shows the pending review" 0 "$BYLINE" review list --dir "$GR"
has "  ...with its identity and action" "$T/out" '^r-7k2m9x4q1z +pending +agent-deploybot .*kubectl delete pod/x -n web'
expect "review show" 0 "$BYLINE" review show r-7k2m9x4q1z --dir "$GR"
has "  ...names the rule" "$T/out" '^rule +prod-deletes$'
expect "review show: an unknown id" 1 "$BYLINE" review show r-0000000000 --dir "$GR"
has "  ...says so" "$T/err" 'no review r-0000000000'
expect "review show: a malformed id is a usage error" 2 "$BYLINE" review show 7k2m9x4q1z --dir "$GR"
expect "review approve without --as is a usage error" 2 "$BYLINE" review approve r-7k2m9x4q1z --dir "$GR"
expect "review approve: --for past 24h is a usage error" 2 "$BYLINE" review approve r-7k2m9x4q1z --as alice --for 25h --dir "$GR"
expect "review approve: --for that is no duration" 2 "$BYLINE" review approve r-7k2m9x4q1z --as alice --for soon --dir "$GR"
expect "review approve: not one's own request" 1 "$BYLINE" review approve r-7k2m9x4q1z --as agent-deploybot --dir "$GR"
has "  ...says why" "$T/err" "agent-deploybot cannot decide review r-7k2m9x4q1z: it is that identity's own request"
expect "review approve: not outside the reviewer group" 1 "$BYLINE" review approve r-7k2m9x4q1z --as bob --dir "$GR"
has "  ...names the group" "$T/err" 'bob cannot decide reviews: it is not in the reviewer group "reviewers"'
expect "review approve: not an unknown identity" 1 "$BYLINE" review approve r-7k2m9x4q1z --as mallory --dir "$GR"
expect "review approve: an expired pending review" 1 "$BYLINE" review approve r-00000000zz --as alice --dir "$GR"
has "  ...says it expired" "$T/err" 'review r-00000000zz has expired'
expect "review deny: a reason with a control character is a usage error" 2 "$BYLINE" review deny r-7k2m9x4q1z --as alice --reason "$(printf 'a\033[2Jb')" --dir "$GR"
expect "review deny: a reason that is not UTF-8 is a usage error" 2 "$BYLINE" review deny r-7k2m9x4q1z --as alice --reason "$(printf 'a\377b')" --dir "$GR"
expect "review deny without --reason is a usage error" 2 "$BYLINE" review deny r-7k2m9x4q1z --as alice --dir "$GR"
expect "review approve --for 10m" 0 "$BYLINE" review approve r-7k2m9x4q1z --as alice --for 10m --dir "$GR"
has "  ...says who may run what, until when" "$T/out" '^review r-7k2m9x4q1z approved by alice until 20[0-9-]+T[0-9:]+Z: agent-deploybot may run "kubectl delete pod/x -n web" on default$'
expect "review deny after an approval" 1 "$BYLINE" review deny r-7k2m9x4q1z --as alice --reason no --dir "$GR"
has "  ...it was decided already" "$T/err" 'is approved already by alice'
expect "review list --json" 0 "$BYLINE" review list --json --dir "$GR"
has "  ...the open approval" "$T/out" '"id":"r-7k2m9x4q1z".*"state":"approved"'
hasnt "  ...not the expired one" "$T/out" 'r-00000000zz'
expect "review list --all --json" 0 "$BYLINE" review list --all --json --dir "$GR"
has "  ...every review" "$T/out" '"id":"r-00000000zz"'
sed -i 's/^policy:$/policy:\n  reviewer_group: "*"/' "$GR/byline.yaml"
expect "review: reviewer_group \"*\" lets any identity review" 1 "$BYLINE" review approve r-00000000zz --as bob --dir "$GR"
has "  ...(then the expiry is what refuses)" "$T/err" 'has expired'

# ---- serve raises its open-file limit ----
# Every connection holds a client and an upstream descriptor; started with a
# soft limit of 256, serve must run with the hard limit.
GN=$T/gw-nofile
NP=$(free_port)
"$BYLINE" init --dir "$GN" --upstream https://127.0.0.1:1 --listen "127.0.0.1:$NP" >/dev/null 2>&1
HARD=$(ulimit -Hn)
(ulimit -Sn 256 && exec "$BYLINE" serve --dir "$GN") >"$T/nofile.log" 2>&1 &
NPID=$!
if [ "$HARD" != unlimited ] && [ "$HARD" -le 256 ]; then
    ok "serve's open-file limit: the hard limit is $HARD, nothing to raise"
elif wait_port "$NP"; then
    SOFT=$(awk '/^Max open files/ { print $4 }' "/proc/$NPID/limits")
    [ "$SOFT" = "$HARD" ] && [ "$SOFT" != 256 ] && ok "serve raises the open-file limit from 256 to the hard limit ($HARD)" ||
        bad "serve's open-file limit is $SOFT, hard $HARD" "$(cat "$T/nofile.log")"
else
    bad "serve did not start with a soft open-file limit of 256" "$(cat "$T/nofile.log")"
fi
kill -TERM "$NPID" 2>/dev/null; kill -TERM "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null

# ---- valgrind ----
VB=${VALGRIND_BYLINE:-$BYLINE}
if command -v valgrind >/dev/null && [ -x "$VB" ] && ! nm "$VB" 2>/dev/null | grep -q __asan_init; then
    VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible)
    expect "valgrind: init" 0 "${VG[@]}" "$VB" init --dir "$T/gw3" --upstream https://10.0.0.1 --upstream-token-file "$T/up.token"
    expect "valgrind: identity add" 0 "${VG[@]}" "$VB" identity add agent-v --dir "$T/gw3"
    VT=$(cat "$T/out")
    expect "valgrind: identity add --cert" 0 "${VG[@]}" "$VB" identity add agent-w --cert --dir "$T/gw3"
    expect "valgrind: identity list" 0 "${VG[@]}" "$VB" identity list --dir "$T/gw3"
    expect "valgrind: config check" 0 "${VG[@]}" "$VB" config check --dir "$GP"
    expect "valgrind: policy check (kubectl exec)" 1 "${VG[@]}" "$VB" policy check --dir "$GP" --as agent-reporting \
        -- kubectl exec api-0 -n web -c app -it -- sh -c 'cat /etc/shadow'
    expect "valgrind: policy check (--request)" 0 "${VG[@]}" "$VB" policy check --dir "$GP" --as agent-reporting \
        --request 'GET /version'
    BYLINE_TOKEN=$VT expect "valgrind: kubeconfig" 0 "${VG[@]}" "$VB" kubeconfig agent-v --dir "$T/gw3"
    expect "valgrind: kubeconfig (cert)" 0 "${VG[@]}" "$VB" kubeconfig agent-w --dir "$T/gw3"
    expect "valgrind: identity revoke" 0 "${VG[@]}" "$VB" identity revoke agent-w --reason gone --dir "$T/gw3"
    expect "valgrind: identity rotate" 0 "${VG[@]}" "$VB" identity rotate agent-v --dir "$T/gw3"
    expect "valgrind: identity list --json" 0 "${VG[@]}" "$VB" identity list --json --dir "$T/gw3"
    expect "valgrind: identity remove" 0 "${VG[@]}" "$VB" identity remove agent-w --dir "$T/gw3"
    expect "valgrind: review list --all --json" 0 "${VG[@]}" "$VB" review list --all --json --dir "$GR"
    expect "valgrind: review show" 0 "${VG[@]}" "$VB" review show r-7k2m9x4q1z --dir "$GR"
    expect "valgrind: review approve (refused)" 1 "${VG[@]}" "$VB" review approve r-00000000zz --as alice --dir "$GR"
    expect "valgrind: a failing load" 1 "${VG[@]}" "$VB" kubeconfig agent-v --dir "$G/nonexistent"
    expect "valgrind: every ledger, metrics and impersonation key set" 0 "${VG[@]}" "$VB" identity list --dir "$G4"
    chmod 644 "$G4/audit-signing.key"
    expect "valgrind: a signing key others can read" 1 "${VG[@]}" "$VB" identity list --dir "$G4"
fi

echo
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
