#!/usr/bin/env bash
# Installs what the integration tests need, idempotently, on Debian 12 (as root, or with sudo):
#   - a JDK >= 17 and Maven (apt), only if `java` (>= 17) / `mvn` are missing
#   - Prometheus and Alertmanager (apt: prometheus, prometheus-alertmanager), only if missing
#   - the Kafka broker's jars from Maven Central (deploy/kafka/kafka.sh resolve, cached in
#     ${SLAMON_CACHE:-$HOME/.cache/slamon})
# Only package registries are needed. `apt-get update` runs only when something has to be installed.
# Services are never started by the package install (no systemd here; policy-rc.d denies it) — the tests
# start their own instances on free ports.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "install-services: $*" >&2; }

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else log "not root and no sudo"; exit 1; fi
fi

java_ok() {
    command -v java >/dev/null || return 1
    local v
    v="$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')"
    [[ "${v%%.*}" =~ ^[0-9]+$ ]] && (( ${v%%.*} >= 17 ))
}

# Debian 12 package names (default-jdk-headless = OpenJDK 17 on bookworm)
need=()
java_ok || need+=(default-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
[[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]] || need+=(prometheus)
[[ -x /usr/bin/prometheus-alertmanager && -x /usr/bin/amtool ]] || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)   # PDF rendering of the monthly review
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v openssl >/dev/null || need+=(openssl)            # test certificates for the TLS listeners
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)  # the SLA record (store/)

if (( ${#need[@]} )); then
    log "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # keep package installs from starting daemons (Docker-style policy-rc.d), if the machine has none
    created_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    cleanup_policy() { if [[ -n "$created_policy" ]]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup_policy EXIT
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
    cleanup_policy
    trap - EXIT
    # belt and braces: if an init script started a daemon anyway, stop it (tests use their own ports)
    for svc in prometheus prometheus-alertmanager; do
        if [[ -x /etc/init.d/$svc ]] && $SUDO /etc/init.d/$svc status >/dev/null 2>&1; then
            log "stopping $svc started by the package install"
            $SUDO /etc/init.d/$svc stop >/dev/null 2>&1 || true
        fi
    done
else
    log "JDK, Maven, Prometheus and Alertmanager already installed"
fi

java_ok || { log "java >= 17 still missing"; exit 1; }
log "$(java -version 2>&1 | head -1); $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g')"
log "$(/usr/bin/prometheus --version 2>&1 | head -1); $(/usr/bin/prometheus-alertmanager --version 2>&1 | head -1)"

lib="$(bash "$ROOT/deploy/kafka/kafka.sh" resolve)"
log "kafka $(bash "$ROOT/deploy/kafka/kafka.sh" version) jars in $lib"
