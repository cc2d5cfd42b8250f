#!/usr/bin/env bash
# `kedro viz run` in the current Kedro project, stopped as a whole: kedro-viz serves from a child
# process that outlives its parent, so it runs here in a process group of its own, and a
# TERM/INT/HUP to this script (or its end) stops that whole group: no server is left on the port.
# Usage: scripts/viz.sh [kedro viz run options]   (KEDRO: the kedro executable, default .venv's)
set -u
KEDRO=${KEDRO:-.venv/bin/kedro}
[ -x "$KEDRO" ] || KEDRO=kedro

set -m  # job control: the background job below leads a process group of its own
"$KEDRO" viz run "$@" &
group=$!
set +m

stop() {
  trap - TERM INT HUP EXIT
  kill -TERM -- "-$group" 2>/dev/null || return 0
  for _ in $(seq 50); do  # up to 5 s for uvicorn to close, then KILL what is left
    kill -0 -- "-$group" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$group" 2>/dev/null || true
}
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT
trap 'stop; exit 129' HUP
trap stop EXIT

wait "$group"
status=$?
stop
exit "$status"
