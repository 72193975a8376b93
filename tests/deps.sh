#!/usr/bin/env bash
# Installs what byline's build, tests and benchmarks need, if missing.
# Debian/Ubuntu only (apt-get). Idempotent and quiet when all is present.
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in gcc make clang libclang-rt-dev pkg-config libssl-dev libjansson-dev libyaml-dev \
         libcmocka-dev zlib1g-dev libnghttp2-dev libsqlite3-dev libexpat1-dev python3 openssl wrk nginx-light valgrind strace ca-certificates; do
    case "$p" in
        libclang-rt-dev) have_pkg libclang-rt-dev || have_pkg libclang-rt-14-dev || need+=("$p") ;;
        nginx-light) have_pkg nginx-light || have_pkg nginx || have_pkg nginx-core || need+=("$p") ;;
        *) have_pkg "$p" || need+=("$p") ;;
    esac
done
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing ${need[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null || true
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! ls /usr/lib/google-cloud-sdk/bin/kubectl.1.* >/dev/null 2>&1 && ! command -v kubectl >/dev/null; then
    echo "deps: kubectl not found; the integration tests need kubectl 1.27 and 1.33" >&2
fi
