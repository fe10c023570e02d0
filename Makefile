# vecshard: the two commands a new machine needs are `make run` and `make test`.
SWIFT ?= swift
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data

FUZZ_SECONDS ?= 60

.PHONY: bootstrap build release run cluster cluster-stop test smoke fuzz bench bench-http bench-search bench-cluster bench-replicas chaos bench-rebalance clean

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release --product vecshard

## Start the service on $(HOST):$(PORT) with data under $(DATA_DIR) (Ctrl-C stops it gracefully).
run: release
	.build/release/vecshard serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

## A local cluster of separate processes (cluster/topology.yaml): router on :8080, 8 shard replicas.
cluster: release
	bash scripts/cluster.sh start

cluster-stop:
	bash scripts/cluster.sh stop

## Build and run every test (debug build, small data, seconds per test).
test: bootstrap
	$(SWIFT) build --build-tests
	# One test at a time: run in parallel on two cores, CPU-bound tests (kernels, recall, training)
	# hold both threads of the cooperative pool for seconds and network tests hit their deadlines
	# (seen twice in CI: HTTP client and gRPC timeouts). Serial: ~1 min instead of ~40 s.
	$(SWIFT) test --skip-build --no-parallel
	$(MAKE) check-deploy

## Check the Kubernetes manifests without a cluster: render every overlay of deploy/ (kustomize_lite,
## compared with kustomize where installed), validate against the Kubernetes schemas, check that
## they agree with the code (flags, probes, ports, topology, pod names) and run the dev overlay's
## pods as local processes. Needs the Python packages of scripts/requirements-test.txt.
.PHONY: check-deploy
check-deploy: bootstrap
	@python3 -c "import kubernetes_validate, yaml, pytest" 2>/dev/null \
	  || python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
	$(SWIFT) build --product vecshard
	VECSHARD_BIN="$$($(SWIFT) build --show-bin-path)/vecshard" python3 -m pytest -q deploy/tests

## The optimized binary end to end (standalone and a replicated cluster), as users run it.
smoke: release
	python3 scripts/smoke.py .build/release/vecshard

## Fuzz the protobuf decoders with libFuzzer for FUZZ_SECONDS (seed corpus in Fuzz/corpus).
fuzz: bootstrap
	$(SWIFT) build -c release --sanitize=fuzzer -Xswiftc -DFUZZING --product VecShardProtoFuzz --scratch-path .build-fuzz
	mkdir -p .build-fuzz/corpus && cp Fuzz/corpus/* .build-fuzz/corpus/
	@echo "fuzzing for $(FUZZ_SECONDS) s (log: .build-fuzz/fuzz.log)"
	@.build-fuzz/release/VecShardProtoFuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 .build-fuzz/corpus Fuzz/corpus \
		> .build-fuzz/fuzz.log 2>&1 || { tail -40 .build-fuzz/fuzz.log; exit 1; }
	@grep -E "^Done|^stat::(number_of_executed_units|new_units_added|peak_rss_mb)" .build-fuzz/fuzz.log

## Benchmarks, side by side with their anchors in the same run (never part of `make test`).
bench: bench-http

bench-http:
	@bash scripts/bootstrap.sh --bench
	bash bench/http_vs_nghttpd.sh

## gmm-1m-128-l2 through the REST API of the standalone service: insert rate, recall/QPS/p50/p99
## with 1, 8, 64 clients, and the same shards searched in-process (DATA=dataset dir from gen.py).
bench-search: release
	bash bench/search_rest.sh $(DATA)

## After bench-search: the same shards as separate processes (network hop), a slowed replica
## with hedging on and off, and the router's fan-out cost over 4, 16 and 64 shard processes.
bench-cluster: release
	bash bench/cluster_bench.sh all

## Versioned replicas under failures (bench/replica_chaos.py): a rolling kill -9 restart under
## writes and searches, CYCLES random kill/restart cycles, and one replica down DOWN seconds
## under 1,000 writes/s on a shard of POINTS points. Needs grpcio (scripts/requirements-test.txt).
CYCLES ?= 50
POINTS ?= 1000000
DOWN ?= 60
# Online rebalancing under writes and exact searches, with a history checker (docs/ARCHITECTURE.md,
# "Online rebalancing"): a 3-shard group grows to 4 and shrinks back, then a tenant moves to its
# own group. Exits non-zero on any lost write, failed or inexact search, or stale copy.
chaos: release
	python3 bench/rebalance_chaos.py .build/release/vecshard grow --points $(or $(CHAOS_POINTS),200000) --rate 10000
	python3 bench/rebalance_chaos.py .build/release/vecshard promote --tenant-points $(or $(TENANT_POINTS),100000) --rate 10000

# A rebalance of 1M x 128 points (3 -> 4 shards, no rate limit) against `vecshard import` of them.
bench-rebalance: release
	python3 bench/rebalance_chaos.py .build/release/vecshard big --points $(or $(POINTS),1000000)

bench-replicas: release
	python3 bench/replica_chaos.py .build/release/vecshard rolling --down-seconds 5
	python3 bench/replica_chaos.py .build/release/vecshard cycles --cycles $(CYCLES)
	python3 bench/replica_chaos.py .build/release/vecshard downtime --points $(POINTS) --down-seconds $(DOWN) --writes-per-second 1000

clean:
	rm -rf .build
