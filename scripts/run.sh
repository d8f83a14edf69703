#!/usr/bin/env bash
# Brings Phoenix Referral up locally without Docker: PostgreSQL and Redis (scripts/deps.sh), the
# database, migrations, both gateways in the background (logs and pids in run/), then walks the
# seed flow with curl and prints ready-to-paste tokens and commands. `make stop` stops the gateways.
# Headings are bold only on a terminal, and never with NO_COLOR set. BIN (default bin) holds the
# gateways, RUN_DIR (default run) their logs and pids.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
RUN_DIR=${RUN_DIR:-run}
export BIN RUN_DIR

ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:8080}
QUERY_ADDR=${QUERY_ADDR:-127.0.0.1:8081}
DB_NAME=${DB_NAME:-phoenix}
TENANT=${TENANT:-demo}
export PHOENIX_DATABASE_URL=${PHOENIX_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$DB_NAME?sslmode=disable}
export PHOENIX_REDIS_URL=${PHOENIX_REDIS_URL:-redis://127.0.0.1:6379/0}
if [ -z "${PHOENIX_JWT_SECRET:-}" ]; then export PHOENIX_DEV=true; fi
mkdir -p "$RUN_DIR"
# Outside development mode the Admin Gateway needs PHOENIX_ADDRESS_HASH_KEY: a key made once and
# kept in run/ keeps stored address hashes comparable across runs.
if [ "${PHOENIX_DEV:-}" != true ] && [ -z "${PHOENIX_ADDRESS_HASH_KEY:-}" ]; then
  [ -s "$RUN_DIR/address-hash-key" ] || (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$RUN_DIR/address-hash-key")
  PHOENIX_ADDRESS_HASH_KEY=$(cat "$RUN_DIR/address-hash-key")
  export PHOENIX_ADDRESS_HASH_KEY
fi
export PHOENIX_REFERRAL_URL_TEMPLATE=${PHOENIX_REFERRAL_URL_TEMPLATE:-https://play.example.com/join?ref=\{code\}}

# Gateways of an earlier run (an orphan would keep the projector lock and serve stale data).
bash scripts/stop.sh >/dev/null || echo "run: an earlier gateway did not stop cleanly (see above)" >&2

# Database and schema.
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB_NAME" >/dev/null
fi
"$BIN/admin-gateway" migrate 2>"$RUN_DIR/migrate.log" || { cat "$RUN_DIR/migrate.log" >&2; exit 1; }

# Gateways.
for g in "admin-gateway $ADMIN_ADDR" "query-gateway $QUERY_ADDR"; do
  read -r name addr <<<"$g"
  PHOENIX_HTTP_ADDR=$addr nohup "$BIN/$name" >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
done
for g in "admin-gateway $ADMIN_ADDR" "query-gateway $QUERY_ADDR"; do
  read -r name addr <<<"$g"
  for _ in $(seq 1 50); do
    curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  # The answer must come from the gateway just started, not from one already on the address.
  if ! curl -fsS "http://$addr/readyz" >/dev/null || ! kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
    echo "$name at $addr is not ready; see $RUN_DIR/$name.log:" >&2
    tail -n 20 "$RUN_DIR/$name.log" >&2
    exit 1
  fi
done

token() { "$BIN/admin-gateway" token --ttl 24h "$@" 2>/dev/null; }
ADMIN_TOKEN=$(token --role tenant_admin --tenant "$TENANT" --sub admin_1)
ALICE_TOKEN=$(token --role player --tenant "$TENANT" --sub alice)
BOB_ID="bob_$RANDOM$RANDOM"  # a new referee on every run
BOB_TOKEN=$(token --role player --tenant "$TENANT" --sub "$BOB_ID")
SERVICE_TOKEN=$(token --role service --tenant "$TENANT" --sub platform)

A="http://$ADMIN_ADDR"
if [ "${PHOENIX_DEV:-}" = true ]; then
  CONSOLE_SIGN_IN="Development sign-in, tenant \"$TENANT\"; or paste \$ADMIN_TOKEN"
else
  CONSOLE_SIGN_IN="sign in by pasting \$ADMIN_TOKEN"
fi
Q="http://$QUERY_ADDR"
bold="" plain=""
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s== %s%s\n$ %s\n' "$bold" "$1" "$plain" "$2"; eval "$2"; echo; }

cat <<EOF2
Phoenix Referral is up.
  Admin Gateway: $A   (log: $RUN_DIR/admin-gateway.log)
  Query Gateway: $Q   (log: $RUN_DIR/query-gateway.log)
  Console:       $A/console/   ($CONSOLE_SIGN_IN)
  Stop with: make stop

Tokens (tenant "$TENANT", valid 24 h, development secret):
  export ADMIN_TOKEN=$ADMIN_TOKEN
  export ALICE_TOKEN=$ALICE_TOKEN
  export BOB_TOKEN=$BOB_TOKEN
  export SERVICE_TOKEN=$SERVICE_TOKEN
EOF2

export ADMIN_TOKEN ALICE_TOKEN BOB_TOKEN SERVICE_TOKEN
step "An admin creates a campaign paying both sides on a first deposit of 10.00 or more" \
  "curl -sS -X POST $A/v1/referral/campaigns -H \"Authorization: Bearer \$ADMIN_TOKEN\" -H 'Content-Type: application/json' -H 'Idempotency-Key: seed-welcome-campaign' -d '{\"name\": \"Welcome Bonus\", \"qualifying_event\": \"deposit.completed\", \"qualifying_filter\": {\"amount\": {\"gte\": 1000}}, \"referrer_rewards\": {\"wallet\": [{\"currency_id\": \"points\", \"amount\": 100}]}, \"referee_rewards\": {\"wallet\": [{\"currency_id\": \"points\", \"amount\": 50}]}}'"
step "Alice gets her referral code" \
  "curl -sS -X POST $A/v1/referral/codes -H \"Authorization: Bearer \$ALICE_TOKEN\" -H 'Content-Type: application/json' -d '{}' | tee $RUN_DIR/alice-code.json"
CODE=$(sed -n 's/.*"code":"\([A-Z0-9_-]*\)".*/\1/p' "$RUN_DIR/alice-code.json")
step "Bob applies Alice's code $CODE" \
  "curl -sS -X POST $A/v1/referral/apply-code -H \"Authorization: Bearer \$BOB_TOKEN\" -H 'Content-Type: application/json' -d '{\"code\": \"$CODE\", \"metadata\": {\"source\": \"poster_qr_code\"}}'"
step "The platform reports Bob's first deposit: both sides are paid" \
  "curl -sS -X POST $A/v1/events -H \"Authorization: Bearer \$SERVICE_TOKEN\" -H 'Content-Type: application/json' -d '{\"event_id\": \"dep_$BOB_ID\", \"type\": \"deposit.completed\", \"user_id\": \"$BOB_ID\", \"payload\": {\"amount\": 5000, \"currency\": \"EUR\"}}'"
sleep 0.3
step "Alice reads her stats on the Query Gateway" \
  "curl -sS $Q/v1/referral/stats -H \"Authorization: Bearer \$ALICE_TOKEN\""
step "Anyone can check a code before signing up" \
  "curl -sS '$Q/v1/referral/validate/$CODE?tenant_id=$TENANT'"
