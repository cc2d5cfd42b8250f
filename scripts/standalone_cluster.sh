#!/usr/bin/env bash
# A Spark standalone cluster on 127.0.0.1 from pyspark's own jars: one master and two workers,
# each a separate JVM (1 core, 2g each); executors are further JVMs with their own Python workers.
#
#   scripts/standalone_cluster.sh start [STATE_DIR]   # prints the master URL (spark://127.0.0.1:P)
#   scripts/standalone_cluster.sh stop  [STATE_DIR]   # stops every process it started, by PID
#   scripts/standalone_cluster.sh status [STATE_DIR]
#
# STATE_DIR (default .cache/standalone) holds the PIDs, ports, logs and the workers' work dirs.
# Use with: kedro run --env=standalone --params=spark_master=$(cat STATE_DIR/master_url)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORKERS="${SPARK_WORKERS:-2}"
WORKER_CORES="${SPARK_WORKER_CORES:-1}"
WORKER_MEMORY="${SPARK_WORKER_MEMORY:-2g}"
START_TIMEOUT="${SPARK_START_TIMEOUT:-90}"
# What Spark's launcher adds for Java 17 (JavaModuleOptions); the daemons are started without it.
JAVA_MODULE_OPTIONS=(
  -XX:+IgnoreUnrecognizedVMOptions
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED -Djdk.reflect.useDirectMethodHandle=false
)

state_dir() {
  local dir="${1:-$ROOT/.cache/standalone}"
  mkdir -p "$dir"
  (cd "$dir" && pwd)
}

pyspark_home() {
  "$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

free_ports() {  # $1 ports on 127.0.0.1 that nothing listens on right now
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for sock in sockets:
    sock.bind(("127.0.0.1", 0))
print(" ".join(str(sock.getsockname()[1]) for sock in sockets))
for sock in sockets:
    sock.close()
EOF
}

alive_workers() {  # from the master's JSON status page
  "$PYTHON" - "$1" <<'EOF' 2>/dev/null || echo 0
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=5) as response:
    print(json.load(response).get("aliveworkers", 0))
EOF
}

launch() {  # name, log file, java args...: start a daemon JVM in the background, record its PID
  local name="$1" log="$2"
  shift 2
  nohup java -Xmx512m "${JAVA_MODULE_OPTIONS[@]}" -cp "$SPARK_HOME/conf:$SPARK_HOME/jars/*" "$@" >"$log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

start() {
  if [[ -f "$STATE/master.pid" ]] && kill -0 "$(cat "$STATE/master.pid")" 2>/dev/null; then
    echo "standalone_cluster: already running: $(cat "$STATE/master_url")"
    return
  fi
  export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS="$STATE/local" PYSPARK_PYTHON="$PYTHON"
  SPARK_HOME="$(pyspark_home)"
  # Workers build executor command lines with Spark's launcher, which needs the Scala version
  # (bin/load-spark-env.sh sets it in a Spark distribution): spark-core_2.12-3.5.9.jar -> 2.12.
  export SPARK_SCALA_VERSION
  SPARK_SCALA_VERSION="$(find "$SPARK_HOME/jars" -name 'spark-core_*.jar' -printf '%f\n' | sed -E 's/^spark-core_([0-9.]+)-.*/\1/')"
  mkdir -p "$STATE/logs" "$STATE/local"
  local ports master_port master_ui
  read -r -a ports <<<"$(free_ports $((2 + WORKERS)))"
  master_port="${ports[0]}"
  master_ui="${ports[1]}"
  echo "spark://127.0.0.1:$master_port" >"$STATE/master_url"
  echo "$master_ui" >"$STATE/master_webui_port"
  launch master "$STATE/logs/master.log" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$master_port" --webui-port "$master_ui"
  for ((i = 1; i <= WORKERS; i++)); do
    mkdir -p "$STATE/worker$i"
    launch "worker$i" "$STATE/logs/worker$i.log" org.apache.spark.deploy.worker.Worker \
      "spark://127.0.0.1:$master_port" --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
      --host 127.0.0.1 --webui-port "${ports[$((1 + i))]}" --work-dir "$STATE/worker$i"
  done
  wait_for_workers "$master_ui"
  cat "$STATE/master_url"
}

wait_for_workers() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until [[ "$(alive_workers "$1")" -ge "$WORKERS" ]]; do
    if ((SECONDS > deadline)); then
      echo "standalone_cluster: $WORKERS workers did not register within ${START_TIMEOUT}s; logs in $STATE/logs" >&2
      stop
      exit 1
    fi
    sleep 1
  done
}

stop_pid() {  # TERM, then KILL after 15 s; also the executor JVMs a worker launched
  local pid="$1" children
  kill -0 "$pid" 2>/dev/null || return 0
  children="$(pgrep -P "$pid" || true)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
  for child in $children; do
    kill -9 "$child" 2>/dev/null || true
  done
}

stop() {
  local pidfile
  for pidfile in "$STATE"/worker*.pid "$STATE"/master.pid; do
    [[ -f "$pidfile" ]] || continue
    stop_pid "$(cat "$pidfile")"
    rm -f "$pidfile"
  done
  echo "standalone_cluster: stopped ($STATE)"
}

status() {
  local pidfile running=0
  for pidfile in "$STATE"/*.pid; do
    [[ -f "$pidfile" ]] || continue
    if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$(basename "$pidfile" .pid): running (pid $(cat "$pidfile"))"
      running=1
    fi
  done
  ((running)) && echo "master: $(cat "$STATE/master_url"), alive workers: $(alive_workers "$(cat "$STATE/master_webui_port")")"
  ((running)) || echo "standalone_cluster: not running"
}

main() {
  local command="${1:-}"
  STATE="$(state_dir "${2:-}")"
  case "$command" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status [STATE_DIR]" >&2; exit 2 ;;
  esac
}

main "$@"
