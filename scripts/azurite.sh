#!/usr/bin/env bash
# Azurite, the local Azure Blob Storage emulator (npm package), for tests and demos.
#
#   scripts/azurite.sh install   install the pinned Azurite into .cache/azurite (idempotent)
#   scripts/azurite.sh run       install if needed, then serve Blob on 127.0.0.1:$AZURITE_BLOB_PORT
#                                (default 10000) with data in $AZURITE_LOCATION (default
#                                .cache/azurite/data), create the containers `raw` and `aerial`,
#                                and print the variables that `--env=azurite` and
#                                `python -m aerial_kedro.blob` read. Ctrl-C stops it.
#
# Tests start their own Azurite on a free port (tests/blob/azurite.py); this script is for demos:
#   terminal 1: make azurite
#   terminal 2: export AZURITE_BLOB_PORT=10000 AZURE_STORAGE_CONNECTION_STRING='...printed...'
#               .venv/bin/python -m aerial_kedro.blob upload ../shared/data/eurosat-sample raw/eurosat-sample
#               .venv/bin/kedro run --pipelines=train --env=azurite
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# 3.35.0 is the newest Azurite that runs on Node.js 20 (3.36 needs Node >= 21, 3.37 Node >= 22).
AZURITE_VERSION="3.35.0"
PREFIX="$ROOT/.cache/azurite"
BIN="$PREFIX/node_modules/.bin/azurite-blob"
PORT="${AZURITE_BLOB_PORT:-10000}"
LOCATION="${AZURITE_LOCATION:-$PREFIX/data}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
# The public, documented key of Azurite's default account (not a secret).
EMULATOR_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

installed_version() {
  node -p "require('$PREFIX/node_modules/azurite/package.json').version" 2>/dev/null || true
}

install() {
  if [[ -x "$BIN" && "$(installed_version)" == "$AZURITE_VERSION" ]]; then
    echo "azurite: $AZURITE_VERSION already in $PREFIX"
    return
  fi
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
  echo "azurite: installed $AZURITE_VERSION in $PREFIX"
}

connection_string() {
  echo "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$EMULATOR_KEY;BlobEndpoint=http://127.0.0.1:$PORT/devstoreaccount1;"
}

wait_for_port() {
  local pid=$1
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "azurite: exited during start-up (port $PORT in use?)" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "azurite: not listening on 127.0.0.1:$PORT after 10 s" >&2
  return 1
}

run() {
  install
  mkdir -p "$LOCATION"
  "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$LOCATION" \
    --skipApiVersionCheck --loose --disableTelemetry &
  local pid=$!
  trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT INT TERM
  wait_for_port "$pid"
  AZURE_STORAGE_CONNECTION_STRING="$(connection_string)" "$PYTHON" -m aerial_kedro.blob mkcontainer raw aerial
  cat <<MSG
azurite: Blob service on http://127.0.0.1:$PORT/devstoreaccount1 (pid $pid, data in $LOCATION)
In another shell:
  export AZURITE_BLOB_PORT=$PORT
  export AZURE_STORAGE_CONNECTION_STRING='$(connection_string)'
MSG
  wait "$pid"
}

case "${1:-run}" in
  install) install ;;
  run) run ;;
  *) echo "usage: $0 [install|run]" >&2; exit 2 ;;
esac
