#!/usr/bin/env bash
# make demo: the whole story on one machine, in about ten seconds.
#   1. build byline, start the stand-in Kubernetes API server (tests/standin)
#   2. `byline init` + two agent identities + a kubeconfig for each
#   3. `byline serve` on those defaults (self-signed TLS, local audit dir)
#   4. kubectl scale ... as agent-deploybot, through byline
#   5. byline's audit line next to the cluster's own audit event
#   6. a request the policy denies (scripts/demo-policy.yaml), and why
# DEMO_KEEP=1 leaves everything running and prints how to use it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.demo
BYLINE=$ROOT/build/byline
KUBECTL=${KUBECTL:-$(ls /usr/lib/google-cloud-sdk/bin/kubectl.1.33 2>/dev/null || command -v kubectl)}
CLUSTER_PORT=${CLUSTER_PORT:-16443}
GATEWAY_PORT=${GATEWAY_PORT:-8443}
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

tests/deps.sh
say "building byline"
make -s build/byline

pids=()
cleanup() {
    if [ "${DEMO_KEEP:-0}" != 1 ]; then
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
    fi
}
trap cleanup EXIT
for port in "$CLUSTER_PORT" "$GATEWAY_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "demo: port $port is in use (a previous DEMO_KEEP=1 run?). Stop it, or set CLUSTER_PORT/GATEWAY_PORT." >&2
        exit 1
    fi
done
rm -rf "$DEMO"
mkdir -p "$DEMO/cluster"
chmod 700 "$DEMO"

say "starting the stand-in cluster on https://127.0.0.1:$CLUSTER_PORT"
# The cluster knows one credential: the shared service account byline holds.
SHARED_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$SHARED_TOKEN" > "$DEMO/cluster/shared.token"
chmod 600 "$DEMO/cluster/shared.token"
printf '%s,system:serviceaccount:byline:gateway,uid-byline-gateway,"system:serviceaccounts,system:masters"\n' \
    "$SHARED_TOKEN" > "$DEMO/cluster/tokens.csv"
python3 tests/standin/kube_standin.py --listen "127.0.0.1:$CLUSTER_PORT" --tls-dir "$DEMO/cluster/tls" \
    --tokens "$DEMO/cluster/tokens.csv" --audit-log "$DEMO/cluster/audit.jsonl" \
    --ready-file "$DEMO/cluster/ready" --seed default 2>"$DEMO/cluster/standin.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$DEMO/cluster/ready" ] && break; sleep 0.1; done
[ -s "$DEMO/cluster/ready" ] || { cat "$DEMO/cluster/standin.log"; exit 1; }

say "byline init, two agent identities, a kubeconfig each"
"$BYLINE" init --dir "$DEMO/gateway" --upstream "https://127.0.0.1:$CLUSTER_PORT" \
    --upstream-ca "$DEMO/cluster/tls/ca.crt" --upstream-token-file "$DEMO/cluster/shared.token" \
    --listen "127.0.0.1:$GATEWAY_PORT" >/dev/null
# byline denies what no rule allows; the demo's rules are scripts/demo-policy.yaml,
# copied in owner-only (byline refuses rule files others may write, and a
# checkout under umask 002 is group-writable).
install -m 600 scripts/demo-policy.yaml "$DEMO/gateway/demo-policy.yaml"
sed -i "s#^    - policy.yaml\$#&\n    - demo-policy.yaml#" "$DEMO/gateway/byline.yaml"
for agent in agent-deploybot agent-reporting; do
    group=deployers; [ "$agent" = agent-reporting ] && group=readers
    "$BYLINE" identity add "$agent" --group "$group" --dir "$DEMO/gateway" 2>/dev/null > "$DEMO/$agent.token"
    "$BYLINE" kubeconfig "$agent" --dir "$DEMO/gateway" --token-file "$DEMO/$agent.token" > "$DEMO/$agent.kubeconfig"
    chmod 600 "$DEMO/$agent.token" "$DEMO/$agent.kubeconfig"
    echo "    $DEMO/$agent.kubeconfig"
done

say "byline serve on https://127.0.0.1:$GATEWAY_PORT"
"$BYLINE" serve --dir "$DEMO/gateway" 2>"$DEMO/gateway.log" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null && break; sleep 0.1; done

say "as agent-deploybot: kubectl scale deployment/api --replicas=5 -n web"
"$KUBECTL" --kubeconfig "$DEMO/agent-deploybot.kubeconfig" scale deployment/api --replicas=5 -n web
"$KUBECTL" --kubeconfig "$DEMO/agent-reporting.kubeconfig" get pods -n web >/dev/null

say "byline's audit record for it"
line=$("$BYLINE" audit tail --dir "$DEMO/gateway" -n 50 | grep 'action="kubectl scale' | tail -n 1)
echo "    $line"
id=${line##*id=}

say "the cluster's own audit event for the same request (auditID $id)"
python3 - "$DEMO/cluster/audit.jsonl" "$id" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("auditID") == sys.argv[2] and e.get("stage") == "ResponseComplete":
        print("    auditID=%s user=%s verb=%s uri=%s code=%s" % (e["auditID"], e["user"]["username"], e["verb"],
              e["requestURI"], e.get("responseStatus", {}).get("code")))
PY
echo
echo "The cluster saw only the shared service account; byline names the agent, and the"
echo "two lines join on the id byline sent upstream as Audit-ID."

say "as agent-reporting: kubectl delete pod api-0 -n web (the policy says no)"
"$KUBECTL" --kubeconfig "$DEMO/agent-reporting.kubeconfig" delete pod api-0 -n web 2>&1 | sed 's/^/    /' || true
"$BYLINE" policy check --dir "$DEMO/gateway" --as agent-reporting -- kubectl delete pod api-0 -n web \
    2>&1 | sed 's/^/    /' || true
if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo
    echo "Still running (pids ${pids[*]}). Try:"
    echo "  kubectl --kubeconfig $DEMO/agent-reporting.kubeconfig get pods -n web"
    echo "  $BYLINE audit tail --dir $DEMO/gateway -f"
fi
