#!/usr/bin/env bash
# A Java runtime for skrel's Spark tests (pyspark starts a local JVM).
#
#   eval "$(bash .ci/java.sh)"   # finds Java (JAVA_HOME, then PATH), installs it if missing, prints the export
#
# Prints exactly one line on stdout, `export JAVA_HOME=...`; everything else goes to stderr.
# Without Java it installs Debian's openjdk-17-jre-headless, but only as root or with passwordless
# sudo; when it cannot, it fails with a message under CI (CI=true) and otherwise prints nothing
# (the Spark tests then skip, saying why).
set -euo pipefail

log() { echo "java.sh: $*" >&2; }

can_root() { [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

java_bin() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        echo "$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then
        command -v java
    fi
}

java="$(java_bin)"
if [ -z "$java" ]; then
    if command -v apt-get >/dev/null 2>&1 && can_root; then
        log "no Java runtime: installing openjdk-17-jre-headless from the distribution's packages"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            openjdk-17-jre-headless >&2
        java="$(java_bin)"
    fi
fi
if [ -z "$java" ]; then
    msg="no Java runtime (JAVA_HOME or java on PATH) and no way to install one (needs apt-get and root or passwordless sudo); install Java 17+ for the Spark tests"
    if [ "${CI:-}" = "true" ]; then
        log "error: $msg"
        exit 1
    fi
    log "warning: $msg; the Spark tests will skip"
    exit 0
fi
home="$(dirname "$(dirname "$(readlink -f "$java")")")"
log "Java: $("$java" -version 2>&1 | head -n 1) at $home"
echo "export JAVA_HOME=$home"
