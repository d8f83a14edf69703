#!/usr/bin/env bash
# The client SDKs and the OpenAPI documents they are generated from (docs/clients.md).
#
#   bash scripts/sdk.sh lint       Redocly lint of both gateway documents (.redocly.yaml)
#   bash scripts/sdk.sh generate   regenerate the Go client (client/go) and the TypeScript types
#   bash scripts/sdk.sh check      what CI runs: lint; regenerate and fail on drift from the
#                                  committed code; the Go client's vet and unit tests; the
#                                  TypeScript build and unit tests; then both clients'
#                                  end-to-end tests against a fresh stack
#   bash scripts/sdk.sh e2e        only the end-to-end tests (client/go/phoenix TestE2ESeedFlow,
#                                  client/ts/test/e2e.test.ts) against a fresh stack
#
# The stack is built from this tree: a new PostgreSQL database (dropped at the end), Redis
# database PHOENIX_SDK_REDIS_DB (default 15, flushed), both gateways on free loopback ports with
# a random JWT secret, and a fresh tenant per client. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

ROOT=$PWD
TS=$ROOT/client/ts
GENERATED=(client/go/admin/admin.gen.go client/go/query/query.gen.go client/ts/src/generated/admin.ts client/ts/src/generated/query.ts)

say() { printf 'sdk: %s\n' "$*" >&2; }

need_node() {
  command -v node >/dev/null && command -v npm >/dev/null || { say "Node.js 20+ and npm are required"; exit 1; }
}

# npm_ci installs client/ts's dependencies from its lockfile, again only when the lockfile changed.
npm_ci() {
  need_node
  local sum stamp=$TS/node_modules/.phoenix-lock-sum
  sum=$(sha256sum "$TS/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    say "npm ci (client/ts)"
    (cd "$TS" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$stamp"
  fi
}

lint() {
  npm_ci
  say "redocly lint"
  (cd "$TS" && npx --no-install redocly lint --config "$ROOT/.redocly.yaml" 2> >(grep -v '[║╔╚]' >&2))
}

generate() {
  npm_ci
  say "generate: Go client (oapi-codegen)"
  (cd client/go && go generate ./...)
  say "generate: TypeScript types (openapi-typescript)"
  (cd "$TS" && npm run --silent generate)
}

# drift regenerates the clients and fails when the result differs from what was there (the
# regenerated files stay, ready to commit).
drift() {
  local before
  before=$(mktemp -d)
  for f in "${GENERATED[@]}"; do mkdir -p "$before/$(dirname "$f")"; cp "$f" "$before/$f"; done
  generate
  local stale=0
  for f in "${GENERATED[@]}"; do
    if ! diff -u "$before/$f" "$f" >"$before/diff" 2>&1; then
      say "STALE: $f differs from what the documents generate:"
      head -40 "$before/diff" >&2
      stale=1
    fi
  done
  rm -rf "$before"
  if ! (cd client/go && go mod tidy -diff >/dev/null); then
    say "STALE: client/go/go.mod or go.sum (run go mod tidy in client/go)"
    stale=1
  fi
  [ "$stale" = 0 ] || { say "generated code is stale: commit the regenerated files"; exit 1; }
  say "generated code is in sync with the documents"
}

go_unit() {
  say "Go client: vet and unit tests"
  local unformatted
  unformatted=$(gofmt -l client/go)
  [ -z "$unformatted" ] || { say "not gofmt'ed: $unformatted"; exit 1; }
  (cd client/go && go vet ./... && go test -race -count=1 ./...)
}

# ---------------------------------------------------------------- a stack for the TypeScript test
STACK=""
PIDS=()
NAMES=()
DB=""
REDIS_DB=${PHOENIX_SDK_REDIS_DB:-15}

# stop_stack ends the gateways (SIGTERM, then SIGKILL for one still running after 10 s, said
# aloud), drops the database and flushes the Redis database.
stop_stack() {
  local i
  for i in "${!PIDS[@]}"; do kill "${PIDS[$i]}" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
    if kill -9 "${PIDS[$i]}" 2>/dev/null; then say "stack: ${NAMES[$i]} did not exit within 10 s of SIGTERM; killed"; fi
  done
  PIDS=()
  NAMES=()
  if [ -n "$DB" ]; then psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; fi
  if [ -n "$STACK" ]; then
    redis-cli -n "$REDIS_DB" FLUSHDB >/dev/null 2>&1 || true
    rm -rf "$STACK"
  fi
}
trap stop_stack EXIT

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_ready() {
  local url=$1 log=$2
  for _ in $(seq 1 100); do
    curl -fsS "$url/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "$url is not ready; its log:"
  tail -40 "$log" >&2
  exit 1
}

start_stack() {
  need_node
  STACK=$(mktemp -d)
  say "stack: building the gateways"
  go build -o "$STACK/" ./cmd/admin-gateway ./cmd/query-gateway
  DB="phoenix_sdk_$(date +%s)_$$"
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB" >/dev/null
  redis-cli -n "$REDIS_DB" FLUSHDB >/dev/null
  export PHOENIX_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
  export PHOENIX_REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB"
  export PHOENIX_JWT_SECRET
  PHOENIX_JWT_SECRET=$(head -c 32 /dev/urandom | base64)
  export PHOENIX_ADDRESS_HASH_KEY
  PHOENIX_ADDRESS_HASH_KEY=$(head -c 32 /dev/urandom | base64)
  export PHOENIX_LOG_LEVEL=warn
  "$STACK/admin-gateway" migrate >"$STACK/migrate.log" 2>&1 || { cat "$STACK/migrate.log" >&2; exit 1; }
  local aport qport
  aport=$(free_port)
  qport=$(free_port)
  # Started with disown so that a gateway ending is not reported as a job by this shell.
  PHOENIX_HTTP_ADDR=127.0.0.1:$aport "$STACK/admin-gateway" >"$STACK/admin-gateway.log" 2>&1 &
  PIDS+=($!) NAMES+=(admin-gateway)
  disown
  PHOENIX_HTTP_ADDR=127.0.0.1:$qport "$STACK/query-gateway" >"$STACK/query-gateway.log" 2>&1 &
  PIDS+=($!) NAMES+=(query-gateway)
  disown
  export PHOENIX_ADMIN_URL=http://127.0.0.1:$aport PHOENIX_QUERY_URL=http://127.0.0.1:$qport
  wait_ready "$PHOENIX_ADMIN_URL" "$STACK/admin-gateway.log"
  wait_ready "$PHOENIX_QUERY_URL" "$STACK/query-gateway.log"
  say "stack: admin $PHOENIX_ADMIN_URL, query $PHOENIX_QUERY_URL, database $DB, redis db $REDIS_DB"
}

# tenant_tokens mints the tokens of a fresh tenant on the stack into the environment the
# end-to-end tests read.
tenant_tokens() {
  local tenant="sdk-$1-$RANDOM$RANDOM"
  mint() { "$STACK/admin-gateway" token --role "$1" --tenant "$tenant" --sub "$2" --ttl 1h; }
  PHOENIX_ADMIN_TOKEN=$(mint tenant_admin admin)
  PHOENIX_SERVICE_TOKEN=$(mint service platform)
  PHOENIX_ALICE_TOKEN=$(mint player alice)
  PHOENIX_BOB_TOKEN=$(mint player bob)
  export PHOENIX_ADMIN_TOKEN PHOENIX_SERVICE_TOKEN PHOENIX_ALICE_TOKEN PHOENIX_BOB_TOKEN
}

ts_unit() {
  npm_ci
  say "TypeScript client: build and unit tests"
  (cd "$TS" && npm run --silent build && npm run --silent test:unit)
}

e2e() {
  npm_ci
  start_stack
  say "Go client: end-to-end test"
  tenant_tokens go
  local out
  if ! out=$(cd client/go && go test -count=1 -v -run '^TestE2ESeedFlow$' ./phoenix/ 2>&1); then
    echo "$out" >&2
    e2e_failed
  fi
  grep -E '^(--- |ok )' <<<"$out"
  grep -q -- '--- PASS: TestE2ESeedFlow' <<<"$out" || { say "the Go end-to-end test did not run"; exit 1; }
  say "TypeScript client: end-to-end test"
  tenant_tokens ts
  (cd "$TS" && npm run --silent test:e2e) || e2e_failed
  stop_stack
}

e2e_failed() {
  say "gateway logs:"
  tail -20 "$STACK/admin-gateway.log" "$STACK/query-gateway.log" >&2
  exit 1
}

case "${1:-check}" in
  lint) lint ;;
  generate) generate ;;
  check)
    lint
    drift
    go_unit
    ts_unit
    e2e
    ;;
  e2e) e2e ;;
  *)
    echo "usage: bash scripts/sdk.sh [lint|generate|check|e2e]" >&2
    exit 2
    ;;
esac
