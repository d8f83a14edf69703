#!/usr/bin/env bash
# Stops the gateways started by scripts/run.sh: every admin-gateway and query-gateway process
# running from this checkout's bin/ (found by executable path, so also an orphan of an earlier
# run whose PID file is gone or stale; gateways of other checkouts are left alone). Each gets
# SIGTERM (it drains and exits), then up to STOP_TIMEOUT seconds (default 25: the gateways'
# default 20 s PHOENIX_SHUTDOWN_TIMEOUT plus a margin) to exit; one still running then is killed
# with SIGKILL, and said so. Exits 0 when every gateway exited on SIGTERM, 1 when one had to be
# killed or could not be stopped.
#
#   BIN=bin RUN_DIR=run STOP_TIMEOUT=25 bash scripts/stop.sh
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
RUN_DIR=${RUN_DIR:-run}
STOP_TIMEOUT=${STOP_TIMEOUT:-25}
names=(admin-gateway query-gateway)

for name in "${names[@]}"; do rm -f "$RUN_DIR/$name.pid"; done
if ! bindir=$(cd "$BIN" 2>/dev/null && pwd -P); then
  echo "stop: no gateway running (no $BIN/)"
  exit 0
fi

# Every process whose executable is one of the gateways in $bindir (a binary rebuilt under a
# running process shows as "path (deleted)"), in one pass over /proc.
declare -A running=()  # pid → name
while read -r dir link; do
  link=${link% (deleted)}
  for name in "${names[@]}"; do
    if [ "$link" = "$bindir/$name" ]; then running[${dir#/proc/}]=$name; fi
  done
done < <(find /proc -mindepth 2 -maxdepth 2 -name exe -printf '%h %l\n' 2>/dev/null)
if [ ${#running[@]} -eq 0 ]; then
  echo "stop: no gateway running"
  exit 0
fi

start=$(date +%s%N)
elapsed() { echo $(( ($(date +%s%N) - start) / 1000000 )); }  # milliseconds
for pid in "${!running[@]}"; do kill -TERM "$pid" 2>/dev/null; done

# wait_gone MS: waits up to MS milliseconds for every process in running to exit, dropping each
# one that has (reporting it with how long it took when a second argument is given).
wait_gone() {
  local deadline=$(( $(elapsed) + $1 ))
  while [ ${#running[@]} -gt 0 ]; do
    for pid in "${!running[@]}"; do
      # A process that exited (a zombie too) has no executable to stat.
      if ! [ -e "/proc/$pid/exe" ]; then
        if [ -n "${2:-}" ]; then echo "stopped ${running[$pid]} (pid $pid) in $(elapsed) ms"; fi
        unset "running[$pid]"
      fi
    done
    if [ ${#running[@]} -eq 0 ] || [ "$(elapsed)" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
}

status=0
wait_gone $(( STOP_TIMEOUT * 1000 )) report
if [ ${#running[@]} -gt 0 ]; then
  status=1
  for pid in "${!running[@]}"; do
    echo "stop: ${running[$pid]} (pid $pid) did not exit within ${STOP_TIMEOUT}s of SIGTERM; killing it (SIGKILL)" >&2
    kill -KILL "$pid" 2>/dev/null
  done
  wait_gone 5000
  for pid in "${!running[@]}"; do
    echo "stop: could not stop ${running[$pid]} (pid $pid): it survived SIGKILL" >&2
  done
fi
exit $status
