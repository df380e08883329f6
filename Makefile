# The two commands a newcomer needs: `make run` and `make test`. Each creates/updates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
REPO ?= examples/models
PORT ?= 8080

.PHONY: run test lint unit examples bench clean proto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,forecast,transformers,postgres,cluster,grpc,s3,otel]'
	touch $(STAMP)

# GPUX's POST /predict runs demo/sentiment on tokens (input_ids, attention_mask),
# demo/sentiment-text on {"text": …} and demo/digits-image on {"image": …}, whichever a request
# sends; public models answer without a
# key (a GPUX client has no place for one), so seed 003's examples run as written. On 127.0.0.1.
# OIP v2 over gRPC (tritonclient.grpc) on GRPC_PORT, Triton's 8001.
GRPC_PORT ?= 8001
run: $(STAMP)
	$(BIN)/foretell serve $(REPO) --port $(PORT) --grpc-port $(GRPC_PORT) --default-model demo/sentiment --default-model demo/sentiment-text --default-model demo/digits-image --anonymous-public --cors-origin http://localhost:$(PORT) --cors-origin http://127.0.0.1:$(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	scripts/postgres.sh install
	$(BIN)/pytest tests/unit tests/property

# The store's tests also run on a real PostgreSQL server, a throwaway one the tests start
# (tests/_postgres.py); this installs Debian's postgresql package if it is missing (apt-get,
# through sudo unless already root, waiting for the dpkg lock).
test: lint
	scripts/postgres.sh install
	command -v chromium >/dev/null || scripts/apt.sh chromium  # tests/browser drive it
	$(BIN)/pytest

# Side-by-side throughput/latency with wrk; writes bench/RESULTS.md. Extra options go in
# BENCH_ARGS, e.g. `make bench BENCH_ARGS="--peers --duration 5"`. Installs wrk if missing
# (scripts/apt.sh: apt-get through sudo unless already root, waiting for another apt's lock).
bench: $(STAMP)
	command -v wrk || scripts/apt.sh wrk
	$(BIN)/python bench/compare.py $(BENCH_ARGS)

# Regenerate OIP v2's gRPC code (api/oip_grpc/proto) from its .proto, with the grpcio-tools
# that the dev extra pins (its protobuf 6 code is what tritonclient[grpc] can load beside).
PROTO := src/foretell/api/oip_grpc/proto/grpc_predict_v2.proto
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src --grpc_python_out=src $(PROTO)

examples: $(STAMP)
	$(BIN)/python scripts/build_examples.py

clean:
	rm -rf $(VENV) .foretell .mypy_cache .ruff_cache .pytest_cache
