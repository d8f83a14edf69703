# Phoenix Referral — developer commands. `make run` and `make test` are the quick start.
GO       ?= go
BIN      := bin
PKGS     := ./...

.PHONY: run stop test test-cluster build deps browser vet fuzz sdk bench bench-quick bench-go clean helm deploy-check

build: ## build both gateways into bin/
	$(GO) build -o $(BIN)/admin-gateway ./cmd/admin-gateway
	$(GO) build -o $(BIN)/query-gateway ./cmd/query-gateway

deps: ## install and start PostgreSQL and Redis when absent
	bash scripts/deps.sh

browser: ## install Debian's Chromium (with PostgreSQL and Redis) for the console's browser tests
	bash scripts/deps.sh browser

run: deps build ## bring the whole system up locally and walk the seed flow
	BIN=$(BIN) bash scripts/run.sh

test: browser helm ## run every test (race detector on, chart checks included), a short fuzz pass, and the client SDK checks
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) test-cluster
	$(MAKE) fuzz FUZZTIME=10s
	bash scripts/sdk.sh check

# The Redis-facing suites once more, on a real three-master Redis Cluster that the tests start on
# loopback ports (pkg/cache/cachetest): the Query Gateway's and its binary's tests and the end-to-end
# suite's Query Gateway, recovery and shutdown tests (about 3 minutes).
CLUSTER_PKGS := ./pkg/cache/cachetest ./pkg/queryapi ./cmd/query-gateway ./e2e
test-cluster: deps ## run the Redis-facing tests against a Redis Cluster (PHOENIX_TEST_REDIS_CLUSTER=1)
	PHOENIX_TEST_REDIS_CLUSTER=1 $(GO) test -race -count=1 -timeout 15m -run '^Test(Qry|Idle|Cluster|Deployment|Serve)' $(CLUSTER_PKGS)

FUZZTIME ?= 30s
fuzz: ## fuzz the request decoders: bodies, query strings and event batches
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./pkg/web
	$(GO) test -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime $(FUZZTIME) ./pkg/web
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) ./pkg/adminapi

bench: ## end-to-end benchmark and fault report, then the 1M-referral scale section: rewrites docs/BENCHMARKS.md and docs/bench/*.svg (15-20 min)
	bash scripts/bench.sh

bench-quick: ## the same on a small data set, without the PostgreSQL restart (3-4 min)
	bash scripts/bench.sh --quick

bench-go: deps ## run the Go benchmarks (apply-code, events, hierarchy, projection cost at 10k/100k referrals; PHOENIX_BENCH_SCALE=1M adds 1M)
	$(GO) test -run '^$$' -bench . -benchtime 3s $(PKGS)

clean:
	rm -rf $(BIN)

stop: ## stop the gateways started by `make run` (and any other running from bin/); fails if one had to be killed
	BIN=$(BIN) bash scripts/stop.sh

helm: ## install the Helm CLI into bin/helm for the chart checks in ./deploy (built once per version into ~/.cache/phoenix)
	bash scripts/helm.sh >/dev/null

sdk: deps ## lint the OpenAPI documents, check the generated clients are current, test both clients end to end
	bash scripts/sdk.sh check

deploy-check: helm ## lint and render the Helm chart, check docker-compose.yml and the Dockerfile
	$(GO) test -count=1 ./deploy/
