#!/usr/bin/env bash
# Brings Phoenix Referral up locally without Docker: PostgreSQL and Redis (scripts/deps.sh), the
# database, migrations, both gateways in the background (logs and pids in run/), then walks the
# seed flow with curl and prints ready-to-paste tokens and commands. `make stop` stops the gateways.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:8080}
QUERY_ADDR=${QUERY_ADDR:-127.0.0.1:8081}
DB_NAME=${DB_NAME:-phoenix}
TENANT=${TENANT:-demo}
export PHOENIX_DATABASE_URL=${PHOENIX_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$DB_NAME?sslmode=disable}
export PHOENIX_REDIS_URL=${PHOENIX_REDIS_URL:-redis://127.0.0.1:6379/0}
if [ -z "${PHOENIX_JWT_SECRET:-}" ]; then export PHOENIX_DEV=true; fi
export PHOENIX_REFERRAL_URL_TEMPLATE=${PHOENIX_REFERRAL_URL_TEMPLATE:-https://play.example.com/join?ref=\{code\}}

mkdir -p run
bash scripts/stop.sh >/dev/null 2>&1 || true

# Database and schema.
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB_NAME" >/dev/null
fi
bin/admin-gateway migrate 2>run/migrate.log || { cat run/migrate.log >&2; exit 1; }

# Gateways.
PHOENIX_HTTP_ADDR=$ADMIN_ADDR nohup bin/admin-gateway >run/admin-gateway.log 2>&1 &
echo $! >run/admin-gateway.pid
PHOENIX_HTTP_ADDR=$QUERY_ADDR nohup bin/query-gateway >run/query-gateway.log 2>&1 &
echo $! >run/query-gateway.pid
for addr in "$ADMIN_ADDR" "$QUERY_ADDR"; do
  for _ in $(seq 1 50); do
    curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://$addr/readyz" >/dev/null || { echo "gateway at $addr is not ready; see run/*.log" >&2; exit 1; }
done

ADMIN_TOKEN=$(bin/admin-gateway token --role tenant_admin --tenant "$TENANT" --sub admin_1 --ttl 24h 2>/dev/null)
ALICE_TOKEN=$(bin/admin-gateway token --role player --tenant "$TENANT" --sub alice --ttl 24h 2>/dev/null)
BOB_ID="bob_$RANDOM$RANDOM"  # a new referee on every run
BOB_TOKEN=$(bin/admin-gateway token --role player --tenant "$TENANT" --sub "$BOB_ID" --ttl 24h 2>/dev/null)
SERVICE_TOKEN=$(bin/admin-gateway token --role service --tenant "$TENANT" --sub platform --ttl 24h 2>/dev/null)

A="http://$ADMIN_ADDR"
Q="http://$QUERY_ADDR"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; eval "$2"; echo; }

cat <<EOF2
Phoenix Referral is up.
  Admin Gateway: $A   (log: run/admin-gateway.log)
  Query Gateway: $Q   (log: run/query-gateway.log)
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
  "curl -sS -X POST $A/v1/referral/codes -H \"Authorization: Bearer \$ALICE_TOKEN\" -H 'Content-Type: application/json' -d '{}' | tee run/alice-code.json"
CODE=$(sed -n 's/.*"code":"\([A-Z0-9_-]*\)".*/\1/p' run/alice-code.json)
step "Bob applies Alice's code $CODE" \
  "curl -sS -X POST $A/v1/referral/apply-code -H \"Authorization: Bearer \$BOB_TOKEN\" -H 'Content-Type: application/json' -d '{\"code\": \"$CODE\", \"metadata\": {\"source\": \"poster_qr_code\"}}'"
step "The platform reports Bob's first deposit: both sides are paid" \
  "curl -sS -X POST $A/v1/events -H \"Authorization: Bearer \$SERVICE_TOKEN\" -H 'Content-Type: application/json' -d '{\"event_id\": \"dep_$BOB_ID\", \"type\": \"deposit.completed\", \"user_id\": \"$BOB_ID\", \"payload\": {\"amount\": 5000, \"currency\": \"EUR\"}}'"
sleep 0.3
step "Alice reads her stats on the Query Gateway" \
  "curl -sS $Q/v1/referral/stats -H \"Authorization: Bearer \$ALICE_TOKEN\""
step "Anyone can check a code before signing up" \
  "curl -sS '$Q/v1/referral/validate/$CODE?tenant_id=$TENANT'"
