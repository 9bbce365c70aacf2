#!/usr/bin/env bash
# vl.sh — a real VictoriaLogs (Apache-2.0) on loopback for wirelog's scale-out
# store tests and for users trying `--store victorialogs` locally. The binary
# is built once from the Go module proxy with `go install` into the cache; no
# downloaded binaries.
#
# Usage: scripts/vl.sh fetch|start|stop|cluster-start|cluster-stop|status
#   fetch          build victoria-logs into the cache (skipped if already there)
#   start          one single-node VictoriaLogs on 127.0.0.1:$VL_PORT
#   stop           stop it (SIGTERM, then SIGKILL after $VL_STOP_TIMEOUT s)
#   cluster-start  two storage nodes on $VL_STORAGE_PORTS and a front node on
#                  $VL_FRONT_PORT started with -storageNode=; starts only the
#                  nodes that are down, so a test can kill -9 one and bring it back
#   cluster-stop   stop the three nodes
#   status         print what is running
#
# Environment (defaults in brackets):
#   WIRELOG_CACHE     [~/.cache/wirelog]  binary in $WIRELOG_CACHE/victorialogs-$VL_VERSION
#   VL_VERSION        [v1.52.2]
#   VL_DIR            [$WIRELOG_CACHE/vl-run]  data, logs and pid files
#   VL_PORT           [9428]  single node
#   VL_FRONT_PORT     [19428]  cluster front node (insert + select)
#   VL_STORAGE_PORTS  [19429,19430]  cluster storage nodes
#   VL_FLUSH_INTERVAL [5s]  -inmemoryDataFlushInterval of every node: an
#                     insert answered 200 is durable only after this
#   VL_START_TIMEOUT  [60]  seconds to wait for a node to answer /health
#   VL_STOP_TIMEOUT   [20]
#   VL_OWNER_PID      [unset]  stop the node(s) when this process is gone (tests)
set -euo pipefail

VL_VERSION=${VL_VERSION:-v1.52.2}
WIRELOG_CACHE=${WIRELOG_CACHE:-$HOME/.cache/wirelog}
VL_BIN=${VL_BIN:-$WIRELOG_CACHE/victorialogs-$VL_VERSION/victoria-logs}
VL_DIR=${VL_DIR:-$WIRELOG_CACHE/vl-run}
VL_PORT=${VL_PORT:-9428}
VL_FRONT_PORT=${VL_FRONT_PORT:-19428}
VL_STORAGE_PORTS=${VL_STORAGE_PORTS:-19429,19430}
VL_FLUSH_INTERVAL=${VL_FLUSH_INTERVAL:-5s}
VL_START_TIMEOUT=${VL_START_TIMEOUT:-60}
VL_STOP_TIMEOUT=${VL_STOP_TIMEOUT:-20}

die() { echo "vl.sh: $*" >&2; exit 1; }

fetch() {
  [[ -x $VL_BIN ]] && return 0
  command -v go >/dev/null || die "go not found: VictoriaLogs is built from the Go module proxy with go install"
  echo "vl.sh: building github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VL_VERSION into $(dirname "$VL_BIN") (about a minute)" >&2
  mkdir -p "$(dirname "$VL_BIN")"
  # Outside any module, so the project's go.mod is not touched.
  (cd / && GOBIN=$(dirname "$VL_BIN") GOFLAGS=-mod=mod go install \
    "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VL_VERSION" >&2) ||
    die "go install of VictoriaLogs $VL_VERSION failed (output above; is the Go module proxy reachable?)"
}

alive() { # alive PID: the process exists and is not a zombie
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $st != Z* ]]
}

running() { [[ -f $1/pid ]] && alive "$(cat "$1/pid")"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

launch() { # launch DIR PORT ARGS…: start one node (no-op when it runs)
  local dir=$1 port=$2; shift 2
  running "$dir" && return 0
  port_open "$port" && die "port 127.0.0.1:$port is already taken by another process; set VL_PORT / VL_FRONT_PORT / VL_STORAGE_PORTS"
  mkdir -p "$dir"
  [[ -f $dir/vl.log ]] && mv -f "$dir/vl.log" "$dir/vl.log.1"
  # setsid: the node outlives this script and is stopped by its pid file.
  # The node writes its own pid (setsid forks when it is a group leader, so
  # $! would not always be the node).
  rm -f "$dir/pid"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/pid" "$VL_BIN" -httpListenAddr="127.0.0.1:$port" \
    -inmemoryDataFlushInterval="$VL_FLUSH_INTERVAL" -loggerLevel=WARN "$@" >"$dir/vl.log" 2>&1 </dev/null &
  local i pid=
  for ((i = 0; i < 50; i++)); do
    [[ -s $dir/pid ]] && pid=$(cat "$dir/pid") && [[ -n $pid ]] && break
    sleep 0.1
  done
  [[ -n $pid ]] || die "node in $dir did not start (no pid written; log: $(tail -n 5 "$dir/vl.log" 2>/dev/null))"
  echo "$port" >"$dir/port"
  if [[ -n ${VL_OWNER_PID:-} ]]; then
    # Tests set VL_OWNER_PID to their own pid: if the test dies without
    # stopping the node, this watcher does. It only signals the pid while
    # that pid still runs this node (its listen address is in the cmdline).
    setsid bash -c 'ours() { grep -qF "$3" "/proc/$2/cmdline" 2>/dev/null; }
      while kill -0 "$1" 2>/dev/null && ours "$@"; do sleep 1; done
      if ours "$@"; then kill -TERM "$2"; sleep 15; ours "$@" && kill -KILL "$2"; fi' \
      vl-owner-watch "$VL_OWNER_PID" "$pid" "127.0.0.1:$port" >/dev/null 2>&1 </dev/null &
  fi
}

wait_ready() { # wait_ready DIR PORT
  local dir=$1 port=$2 deadline=$((SECONDS + VL_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    running "$dir" || { tail -n 30 "$dir/vl.log" >&2 || true; die "node in $dir (pid $(cat "$dir/pid" 2>/dev/null)) exited during start-up (log above)"; }
    if port_open "$port" && [[ $( (exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /health HTTP/1.0\r\n\r\n' >&3; cat <&3) 2>/dev/null) == *OK* ]]; then
      return 0
    fi
    sleep 0.2
  done
  tail -n 30 "$dir/vl.log" >&2 || true
  die "node in $dir did not answer /health on 127.0.0.1:$port within ${VL_START_TIMEOUT}s (VL_START_TIMEOUT)"
}

stop_nodes() { # stop_nodes DIR…: SIGTERM (VictoriaLogs flushes to disk), SIGKILL later
  local dir pid pids=() deadline=$((SECONDS + VL_STOP_TIMEOUT))
  for dir in "$@"; do
    [[ -f $dir/pid ]] || continue
    pid=$(cat "$dir/pid")
    if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    rm -f "$dir/pid"
  done
  for pid in "${pids[@]}"; do
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if alive "$pid"; then
      echo "vl.sh: node $pid ignored SIGTERM for ${VL_STOP_TIMEOUT}s (VL_STOP_TIMEOUT), killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

storage_ports() { IFS=, read -r -a SPORTS <<<"$VL_STORAGE_PORTS"; }

start_single() {
  fetch
  local dir=$VL_DIR/single
  launch "$dir" "$VL_PORT" -storageDataPath="$dir/data"
  wait_ready "$dir" "$VL_PORT"
  echo "vl.sh: VictoriaLogs up on http://127.0.0.1:$VL_PORT (pid $(cat "$dir/pid"), log in $dir)"
}

start_cluster() {
  fetch
  storage_ports
  ((${#SPORTS[@]} >= 1)) || die "VL_STORAGE_PORTS names no port"
  local i nodes=()
  for i in "${!SPORTS[@]}"; do
    launch "$VL_DIR/storage$((i + 1))" "${SPORTS[i]}" -storageDataPath="$VL_DIR/storage$((i + 1))/data"
    nodes+=("127.0.0.1:${SPORTS[i]}")
  done
  local IFS=,
  # The front node stores nothing itself: it spreads inserts over the storage
  # nodes and fans queries out to them.
  launch "$VL_DIR/front" "$VL_FRONT_PORT" -storageNode="${nodes[*]}" -storageDataPath="$VL_DIR/front/data"
  unset IFS
  for i in "${!SPORTS[@]}"; do wait_ready "$VL_DIR/storage$((i + 1))" "${SPORTS[i]}"; done
  wait_ready "$VL_DIR/front" "$VL_FRONT_PORT"
  echo "vl.sh: cluster up: front http://127.0.0.1:$VL_FRONT_PORT, storage nodes ${VL_STORAGE_PORTS} (logs in $VL_DIR)"
}

stop_cluster() {
  storage_ports
  local i dirs=("$VL_DIR/front")
  for i in "${!SPORTS[@]}"; do dirs+=("$VL_DIR/storage$((i + 1))"); done
  stop_nodes "${dirs[@]}"
}

status() {
  local d any=0
  for d in "$VL_DIR"/*/; do
    d=${d%/}
    [[ -f $d/port ]] || continue
    if running "$d"; then
      echo "$(basename "$d"): running, pid $(cat "$d/pid"), http://127.0.0.1:$(cat "$d/port")"
      any=1
    else
      echo "$(basename "$d"): stopped"
    fi
  done
  ((any)) || { echo "no VictoriaLogs node running under $VL_DIR"; return 3; }
}

case ${1:-} in
  fetch) fetch ;;
  start) start_single ;;
  stop) stop_nodes "$VL_DIR/single" ;;
  cluster-start) start_cluster ;;
  cluster-stop) stop_cluster ;;
  status) status ;;
  *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; [[ -n ${1:-} ]] && exit 2 || exit 0 ;;
esac
