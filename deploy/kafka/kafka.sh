#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) for tests and CI, resolved from Maven Central.
#
#   kafka.sh resolve              download the broker's jars into the cache (idempotent); prints the lib dir
#   kafka.sh start DIR [PORT]     configure (first time: format) and start a broker whose state lives in DIR,
#                                 wait until it is ready, print its bootstrap address "127.0.0.1:PORT".
#                                 Starting again on the same DIR reuses its config, ports and data (restart).
#   kafka.sh run DIR [PORT]       like start, but exec the broker in the foreground (no wait, logs to
#                                 stdout/stderr, pid file = this process): for supervisors such as pytest
#   kafka.sh stop DIR [TIMEOUT]   SIGTERM the broker (controlled shutdown), SIGKILL its process group after
#                                 TIMEOUT seconds (default 30)
#   kafka.sh status DIR           exit 0 if the broker of DIR is running
#   kafka.sh version              print the pinned Kafka version
#   kafka.sh tools                resolve Kafka's command-line tools beside the broker (the kafka-tools jar into
#                                 $SLAMON_CACHE/kafka-<version>/tools; the rest of their classpath is the broker's
#                                 lib), write kafka-topics.sh, kafka-consumer-groups.sh, ... into
#                                 $SLAMON_CACHE/kafka-<version>/bin and print that directory
#   kafka.sh tool NAME [ARGS...]  run one of them (resolving first if needed), e.g.
#                                 kafka.sh tool kafka-consumer-groups.sh --bootstrap-server 127.0.0.1:9092 --list
#
# Environment:
#   SLAMON_CACHE                  cache root (default $HOME/.cache/slamon); jars go to
#                                 $SLAMON_CACHE/kafka-<version>/lib
#   SLAMON_KAFKA_VERSION          override the pinned version (keep log4j.version in pom.xml in step with it)
#   SLAMON_KAFKA_HEAP             JVM heap flags (default "-Xms128m -Xmx512m")
#   SLAMON_KAFKA_START_TIMEOUT    seconds to wait for readiness (default 90)
#   SLAMON_KAFKA_LOG_LEVEL        root log level of the broker (default INFO), log in DIR/kafka.log
#   SLAMON_KAFKA_TOOLS_LOG_LEVEL  log level of the command-line tools (default WARN, on stderr)
#
# Secure listeners (read when DIR is configured the first time; none by default). Each adds a listener on
# 127.0.0.1 next to the PLAINTEXT one (controller and inter-broker traffic stay PLAINTEXT on loopback):
#   SLAMON_KAFKA_SASL_PLAINTEXT_PORT  SASL_PLAINTEXT listener, SCRAM-SHA-256/512
#   SLAMON_KAFKA_SSL_PORT             SSL listener (TLS; client certificates per SLAMON_KAFKA_SSL_CLIENT_AUTH)
#   SLAMON_KAFKA_SASL_SSL_PORT        SASL_SSL listener, SCRAM-SHA-256/512 over TLS
#   SLAMON_KAFKA_SSL_KEYSTORE_PEM     TLS listeners: PEM file with the broker's unencrypted PKCS#8 private key
#                                     followed by its certificate chain
#   SLAMON_KAFKA_SSL_TRUSTSTORE_PEM   PEM CA certificates that sign client certificates (optional)
#   SLAMON_KAFKA_SSL_CLIENT_AUTH      none|requested|required, SSL listener only (default none)
#   SLAMON_KAFKA_SCRAM_USERS_FILE     SASL listeners: "name:password" lines (no , ] or " in them); each user is
#                                     created for both SCRAM mechanisms when DIR is formatted. The passwords
#                                     go to the format command only, never into DIR.
# The secure listeners' addresses are written to DIR/listeners ("PROTOCOL 127.0.0.1:PORT" lines).
#
# stdout carries only the result (lib dir / bootstrap address); diagnostics go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_VERSION="${SLAMON_KAFKA_VERSION:-4.3.1}"
CACHE_ROOT="${SLAMON_CACHE:-${HOME:-/root}/.cache/slamon}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIB="$KAFKA_HOME/lib"
MAIN_JAR="kafka_2.13-$KAFKA_VERSION.jar"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"

log() { echo "kafka.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

resolved() { [[ -f "$LIB/.complete" && -f "$LIB/$MAIN_JAR" ]]; }

TOOLS="$KAFKA_HOME/tools"
TOOLS_JAR="kafka-tools-$KAFKA_VERSION.jar"
BIN="$KAFKA_HOME/bin"
DEP_COPY="org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy"

# Kafka's command-line tools: script name -> main class (as in the distribution's bin/). The classes are in the
# kafka-tools jar (resolved alone: the tools listed here find the rest of their classpath in the broker's lib;
# kafka-tools' own dependency closure adds Kafka Connect and Jetty, 43 MB, for the Connect tools only) or in
# the broker's own jars.
TOOL_CLASSES="
kafka-topics.sh org.apache.kafka.tools.TopicCommand
kafka-consumer-groups.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
kafka-console-consumer.sh org.apache.kafka.tools.consumer.ConsoleConsumer
kafka-console-producer.sh org.apache.kafka.tools.ConsoleProducer
kafka-get-offsets.sh org.apache.kafka.tools.GetOffsetShell
kafka-configs.sh kafka.admin.ConfigCommand
kafka-acls.sh org.apache.kafka.tools.AclCommand
kafka-transactions.sh org.apache.kafka.tools.TransactionsCommand
kafka-delete-records.sh org.apache.kafka.tools.DeleteRecordsCommand
kafka-dump-log.sh org.apache.kafka.tools.DumpLogSegments
kafka-log-dirs.sh org.apache.kafka.tools.LogDirsCommand
kafka-metadata-quorum.sh org.apache.kafka.tools.MetadataQuorumCommand
kafka-broker-api-versions.sh org.apache.kafka.tools.BrokerApiVersionsCommand
kafka-features.sh org.apache.kafka.tools.FeatureCommand
kafka-leader-election.sh org.apache.kafka.tools.LeaderElectionCommand
kafka-reassign-partitions.sh org.apache.kafka.tools.reassign.ReassignPartitionsCommand
kafka-groups.sh org.apache.kafka.tools.GroupsCommand
kafka-cluster.sh org.apache.kafka.tools.ClusterTool
kafka-storage.sh kafka.tools.StorageTool
"

tool_class() {
    local name class
    while read -r name class; do
        if [[ -n "$name" && "$name" == "$1" ]]; then echo "$class"; return 0; fi
    done <<<"$TOOL_CLASSES"
    return 1
}

tool_names() { awk 'NF {printf "%s%s", sep, $1; sep=" "}' <<<"$TOOL_CLASSES"; }

tools_resolved() { [[ -f "$TOOLS/.complete" && -f "$TOOLS/$TOOLS_JAR" ]]; }

cmd_resolve_tools() {
    resolved || cmd_resolve >/dev/null
    if ! tools_resolved; then
        command -v mvn >/dev/null || die "mvn not found (install maven, e.g. .ci/install-services.sh)"
        exec 9>"$KAFKA_HOME/.resolve.lock"
        if command -v flock >/dev/null; then flock 9; fi
        if ! tools_resolved; then
            local tmp
            tmp="$(mktemp -d "$KAFKA_HOME/tools.tmp.XXXXXX")"
            log "resolving org.apache.kafka:kafka-tools:$KAFKA_VERSION from Maven Central into $TOOLS"
            if ! mvn -B -q -Dstyle.color=never "$DEP_COPY" -Dartifact="org.apache.kafka:kafka-tools:$KAFKA_VERSION" \
                    -DoutputDirectory="$tmp" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
                rm -rf "$tmp"
                die "maven could not resolve kafka-tools $KAFKA_VERSION"
            fi
            [[ -f "$tmp/$TOOLS_JAR" ]] || { rm -rf "$tmp"; die "$TOOLS_JAR missing after resolve"; }
            touch "$tmp/.complete"
            rm -rf "$TOOLS"
            mv "$tmp" "$TOOLS"
        fi
        exec 9>&-
    fi
    write_tool_scripts
    echo "$BIN"
}

# $BIN/<tool>.sh for every tool: standalone scripts (java on PATH), as in the distribution's bin/; log
# messages to stderr at WARN (SLAMON_KAFKA_TOOLS_LOG_LEVEL), so stdout carries only the tool's output
write_tool_scripts() {
    mkdir -p "$BIN"
    # shellcheck disable=SC2016
    sed -e 's|{env:SLAMON_KAFKA_LOG_LEVEL:-INFO}|{env:SLAMON_KAFKA_TOOLS_LOG_LEVEL:-WARN}|' \
        -e 's|^name = .*|name = slamon-kafka-tools|' "$HERE/log4j2.properties" >"$BIN/tools-log4j2.properties"
    local name class
    while read -r name class; do
        [[ -n "$name" ]] || continue
        {
            echo '#!/usr/bin/env bash'
            echo "# generated by deploy/kafka/kafka.sh tools (Kafka $KAFKA_VERSION): $class"
            echo "exec java \${KAFKA_TOOLS_HEAP:--Xmx256m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \\"
            echo "    -Dlog4j2.configurationFile=\"$BIN/tools-log4j2.properties\" -Dlog4j2.disable.jmx=true \\"
            echo "    -cp \"$TOOLS/$TOOLS_JAR:$LIB/*\" $class \"\$@\""
        } >"$BIN/$name.tmp"
        chmod +x "$BIN/$name.tmp"
        mv -f "$BIN/$name.tmp" "$BIN/$name"
    done <<<"$TOOL_CLASSES"
}

cmd_tool() {
    local name="${1:-}"
    [[ -n "$name" ]] || die "usage: kafka.sh tool NAME [ARGS...] (NAME: $(tool_names))"
    shift
    tool_class "$name" >/dev/null || die "unknown tool '$name' (known: $(tool_names))"
    if ! tools_resolved || [[ ! -x "$BIN/$name" ]]; then cmd_resolve_tools >/dev/null; fi
    exec "$BIN/$name" "$@"
}

cmd_resolve() {
    if resolved; then
        echo "$LIB"
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (install maven, e.g. .ci/install-services.sh)"
    command -v java >/dev/null || die "java not found (install a JDK >= 17)"
    mkdir -p "$KAFKA_HOME"
    # one resolver at a time (parallel test runs share the cache)
    exec 9>"$KAFKA_HOME/.resolve.lock"
    if command -v flock >/dev/null; then flock 9; fi
    if resolved; then
        exec 9>&-
        echo "$LIB"
        return 0
    fi
    local tmp
    tmp="$(mktemp -d "$KAFKA_HOME/lib.tmp.XXXXXX")"
    log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central into $LIB"
    # (maven 3.8 prints stray ANSI resets even in batch mode: strip them)
    if ! mvn -B -q -Dstyle.color=never -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" "$DEP_PLUGIN" \
            -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
        rm -rf "$tmp"
        die "maven could not resolve kafka $KAFKA_VERSION"
    fi
    [[ -f "$tmp/$MAIN_JAR" ]] || { rm -rf "$tmp"; die "$MAIN_JAR missing after resolve"; }
    touch "$tmp/.complete"
    rm -rf "$LIB"
    mv "$tmp" "$LIB"
    exec 9>&-   # release the lock (and keep the fd out of a broker started by the same call)
    echo "$LIB"
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free port found"
}

# same as `kafka.tools.StorageTool random-uuid` (16 random bytes, base64url without padding, not starting
# with "-") without a second JVM start
random_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* && "$id" != "AAAAAAAAAAAAAAAAAAAAAA" && "$id" != "AAAAAAAAAAAAAAAAAAAAAQ" ]] && break
    done
    echo "$id"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# alive and not a zombie (a killed broker whose parent is gone may linger as a zombie until reaped)
pid_alive() {
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local state
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" ]]
}

# pid of DIR's broker if it is running (a stale pid file whose pid was reused by another program is ignored)
read_pid() {
    local pid
    pid="$(cat "$1/kafka.pid" 2>/dev/null || true)"
    if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then
        echo "$pid"
    fi
}

java_cmd() {
    # shellcheck disable=SC2206
    local heap=(${SLAMON_KAFKA_HEAP:--Xms128m -Xmx512m})
    JAVA_ARGS=(java "${heap[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$HERE/log4j2.properties"
        -Dlog4j2.disable.jmx=true -cp "$LIB/*")
}

# the optional secure listeners: "PROTOCOL PORT" lines on stdout ("auto" ports become free ones)
secure_listener_ports() {
    local proto var port
    for proto in SASL_PLAINTEXT SSL SASL_SSL; do
        var="SLAMON_KAFKA_${proto}_PORT"
        port="${!var:-}"
        [[ -n "$port" ]] || continue
        [[ "$port" == auto ]] && port="$(free_port)"
        [[ "$port" =~ ^[0-9]+$ ]] || die "$var must be a port number or auto, got '$port'"
        echo "$proto $port"
    done
}

# append the secure listeners to DIR/server.properties (needs DIR/listeners)
write_security_config() {
    local dir="$1" port="$2" cport="$3" proto p listeners="" protomap="" sasl=0 tls=0
    while read -r proto p; do
        listeners+=",$proto://127.0.0.1:$p"
        protomap+=",$proto:$proto"
        [[ "$proto" == SASL_* ]] && sasl=1
        [[ "$proto" == *SSL ]] && tls=1
    done < <(sed 's/ 127.0.0.1:/ /' "$dir/listeners")
    sed -i -e "s|^listeners=.*|listeners=PLAINTEXT://127.0.0.1:$port$listeners,CONTROLLER://127.0.0.1:$cport|" \
        -e "s|^advertised.listeners=.*|advertised.listeners=PLAINTEXT://127.0.0.1:$port$listeners|" \
        -e "s|^listener.security.protocol.map=.*|&$protomap|" "$dir/server.properties"
    {
        echo ""
        echo "# secure listeners (SLAMON_KAFKA_*_PORT); no secret in this file"
        if (( sasl )); then
            echo "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512"
            for proto in sasl_plaintext sasl_ssl; do
                for mech in scram-sha-256 scram-sha-512; do
                    echo "listener.name.$proto.$mech.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
                done
            done
        fi
        if (( tls )); then
            local keystore="${SLAMON_KAFKA_SSL_KEYSTORE_PEM:-}" truststore="${SLAMON_KAFKA_SSL_TRUSTSTORE_PEM:-}"
            [[ -f "$keystore" ]] || die "a TLS listener needs SLAMON_KAFKA_SSL_KEYSTORE_PEM (key + certificate chain)"
            echo "ssl.keystore.type=PEM"
            echo "ssl.keystore.location=$(cd "$(dirname "$keystore")" && pwd)/$(basename "$keystore")"
            if [[ -n "$truststore" ]]; then
                [[ -f "$truststore" ]] || die "SLAMON_KAFKA_SSL_TRUSTSTORE_PEM: $truststore not found"
                echo "ssl.truststore.type=PEM"
                echo "ssl.truststore.location=$(cd "$(dirname "$truststore")" && pwd)/$(basename "$truststore")"
            fi
            echo "listener.name.ssl.ssl.client.auth=${SLAMON_KAFKA_SSL_CLIENT_AUTH:-none}"
        fi
    } >>"$dir/server.properties"
}

# --add-scram arguments of the storage format command, from SLAMON_KAFKA_SCRAM_USERS_FILE
scram_format_args() {
    local file="${SLAMON_KAFKA_SCRAM_USERS_FILE:-}" name password mech
    SCRAM_ARGS=()
    [[ -n "$file" ]] || return 0
    [[ -f "$file" ]] || die "SLAMON_KAFKA_SCRAM_USERS_FILE: $file not found"
    while IFS=: read -r name password || [[ -n "$name" ]]; do
        [[ -n "$name" && "$name" != \#* ]] || continue
        for mech in SCRAM-SHA-256 SCRAM-SHA-512; do
            SCRAM_ARGS+=(--add-scram "$mech=[name=$name,password=$password]")
        done
    done <"$file"
}

write_config() {
    local dir="$1" port="$2" cport="$3"
    cat >"$dir/server.properties" <<EOF
# generated by deploy/kafka/kafka.sh (Kafka $KAFKA_VERSION, single node, KRaft)
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

# one broker: every internal topic at replication 1 / min ISR 1 (transactions hang otherwise)
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

# fast tests on 2 cores
group.initial.rebalance.delay.ms=0
num.partitions=1
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
auto.create.topics.enable=true
delete.topic.enable=true
log.retention.check.interval.ms=300000
log.cleaner.dedupe.buffer.size=16777216
# after a kill -9 the restarted broker cannot register until its old session expires (default 9 s)
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
EOF
}

wait_ready() {
    local dir="$1" port="$2" pid="$3" timeout="${SLAMON_KAFKA_START_TIMEOUT:-90}"
    local deadline=$(( SECONDS + timeout ))
    while (( SECONDS < deadline )); do
        if ! pid_alive "$pid"; then
            log "broker exited during startup; last lines of $dir/kafka.log:"
            tail -n 40 "$dir/kafka.log" >&2 || true
            rm -f "$dir/kafka.pid"
            return 1
        fi
        if grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null && port_open "$port"; then
            return 0
        fi
        sleep 0.2
    done
    log "broker not ready after ${timeout}s; last lines of $dir/kafka.log:"
    tail -n 40 "$dir/kafka.log" >&2 || true
    return 1
}

# prepare DIR [PORT]: sets DIR, PORT, JAVA_ARGS; writes config and formats storage on first use
prepare() {
    DIR="${1:-}"
    local port="${2:-}"
    [[ -n "$DIR" ]] || die "usage: kafka.sh start|run DIR [PORT]"
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    local dir="$DIR" pid
    pid="$(read_pid "$dir")"
    if pid_alive "$pid"; then
        die "a broker is already running for $dir (pid $pid)"
    fi
    resolved || cmd_resolve >/dev/null
    command -v java >/dev/null || die "java not found (install a JDK >= 17)"
    java_cmd
    local cport
    if [[ -f "$dir/server.properties" && -f "$dir/ports" ]]; then
        # restart of an existing broker: same ports, same data
        read -r oldport cport <"$dir/ports"
        if [[ -n "$port" && "$port" != "$oldport" ]]; then
            die "$dir belongs to a broker on port $oldport (asked for $port)"
        fi
        port="$oldport"
    else
        [[ -n "$port" ]] || port="$(free_port)"
        cport="$(free_port)"
        while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done
        write_config "$dir" "$port" "$cport"
        secure_listener_ports | sed 's/ / 127.0.0.1:/' >"$dir/listeners"
        if [[ -s "$dir/listeners" ]]; then
            write_security_config "$dir" "$port" "$cport"
        else
            rm -f "$dir/listeners"
        fi
        echo "$port $cport" >"$dir/ports"
    fi
    # a broker killed just before (kill -9) may still hold its ports for a moment
    local n=0
    while { port_open "$port" || port_open "$cport"; } && (( n++ < 50 )); do sleep 0.2; done
    if port_open "$port" || port_open "$cport"; then die "port $port or $cport is already in use"; fi
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        local cluster_id
        cluster_id="$(random_cluster_id)"
        scram_format_args
        "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
            "${SCRAM_ARGS[@]}" >>"$dir/format.log" 2>&1 || { tail -n 20 "$dir/format.log" >&2; die "storage format failed"; }
    fi
    PORT="$port"
}

# run DIR [PORT]: prepare, then exec the broker in the foreground (logs on stdout/stderr).
# For supervisors that want the JVM as their direct child (tests/support/procs.py).
cmd_run() {
    prepare "$@"
    echo "$$" >"$DIR/kafka.pid"
    exec "${JAVA_ARGS[@]}" kafka.Kafka "$DIR/server.properties"
}

cmd_start() {
    local start=$SECONDS pid
    prepare "$@"
    local dir="$DIR" port="$PORT"
    # a fresh log per start, so readiness is judged on this run's lines only
    if [[ -f "$dir/kafka.log" ]]; then mv -f "$dir/kafka.log" "$dir/kafka.log.prev"; fi
    # job control on: the broker gets its own process group (pgid == pid), so stop can kill the whole group
    set -m
    nohup "${JAVA_ARGS[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 </dev/null &
    pid=$!
    set +m
    disown "$pid" 2>/dev/null || true
    echo "$pid" >"$dir/kafka.pid"
    if ! wait_ready "$dir" "$port" "$pid"; then
        cmd_stop "$dir" 5 || true
        die "kafka did not start"
    fi
    log "kafka $KAFKA_VERSION ready on 127.0.0.1:$port after $(( SECONDS - start ))s (pid $pid, log $dir/kafka.log)"
    if [[ -f "$dir/listeners" ]]; then log "secure listeners: $(tr '\n' ' ' <"$dir/listeners")"; fi
    echo "127.0.0.1:$port"
}

cmd_stop() {
    local dir="${1:-}" timeout="${2:-30}"
    [[ -n "$dir" ]] || die "usage: kafka.sh stop DIR [TIMEOUT]"
    local pid
    pid="$(read_pid "$dir")"
    if ! pid_alive "$pid"; then
        rm -f "$dir/kafka.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(( SECONDS + timeout ))
    while pid_alive "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
    if pid_alive "$pid"; then
        log "broker $pid did not stop in ${timeout}s: killing its process group"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        local n=0
        while pid_alive "$pid" && (( n++ < 100 )); do sleep 0.1; done
    fi
    rm -f "$dir/kafka.pid"
}

cmd_status() {
    local dir="${1:-}"
    [[ -n "$dir" ]] || die "usage: kafka.sh status DIR"
    pid_alive "$(read_pid "$dir")"
}

case "${1:-}" in
    resolve) shift; cmd_resolve "$@" ;;
    start) shift; cmd_start "$@" ;;
    run) shift; cmd_run "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    version) echo "$KAFKA_VERSION" ;;
    tools) shift; cmd_resolve_tools "$@" ;;
    tool) shift; cmd_tool "$@" ;;
    *) echo "usage: $0 {resolve|start DIR [PORT]|run DIR [PORT]|stop DIR [TIMEOUT]|status DIR|version|tools|tool NAME [ARGS...]}" >&2
       exit 2 ;;
esac
