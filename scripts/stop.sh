#!/usr/bin/env bash
# Stops the gateways started by scripts/run.sh (SIGTERM: they drain and exit).
cd "$(dirname "$0")/.."
for name in admin-gateway query-gateway; do
  if [ -f "run/$name.pid" ]; then
    pid=$(cat "run/$name.pid")
    kill "$pid" 2>/dev/null && echo "stopped $name ($pid)"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "run/$name.pid"
  fi
done
