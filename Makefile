# Sluice — developer entry points. `make demo` runs the whole pipeline on the embedded defaults
# (local directory object store + SQLite manifest + local MLflow file store); `make test` runs the
# test suite. Both bootstrap what they need on a fresh Debian machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DENO_VERSION := 2.9.6
TOOLS := $(CURDIR)/.tools
# Prefer a deno on PATH; else the project-local one installed from npm.
DENO := $(shell command -v deno 2>/dev/null || echo $(TOOLS)/node_modules/.bin/deno)
export PATH := $(TOOLS)/node_modules/.bin:$(PATH)
# sharp's default concurrency on glibc is 1 unless the allocator is tamed (ENVIRONMENT.md).
export MALLOC_ARENA_MAX ?= 2
# onnxruntime-node's postinstall downloads CUDA libraries from an unreachable host.
export ONNXRUNTIME_NODE_INSTALL := skip
# Trust the system CA store as well as npm's and Deno's own root lists (TLS-inspecting networks).
ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
export NODE_EXTRA_CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
export DENO_TLS_CA_STORE ?= mozilla,system
endif

APT_PACKAGES := postgresql prometheus libvips-tools python3-torch python3-torchvision python3-onnx \
	python3-numpy ca-certificates systemd shellcheck xfsprogs mdadm podman runc debootstrap uidmap \
	fuse-overlayfs slirp4netns podman-compose
APT_PROBES := /usr/lib/postgresql /usr/bin/promtool /usr/bin/vipsthumbnail /usr/lib/python3/dist-packages/torch \
	/usr/lib/python3/dist-packages/torchvision /usr/lib/python3/dist-packages/onnx \
	/usr/bin/systemd-analyze /usr/bin/shellcheck /usr/sbin/mkfs.xfs /usr/sbin/mdadm /usr/bin/podman /usr/sbin/runc \
	/usr/sbin/debootstrap /usr/bin/newuidmap /usr/bin/fuse-overlayfs /usr/bin/slirp4netns /usr/bin/podman-compose

.PHONY: help deno deps system-deps demo test test-faults test-faults-pg-restart test-queue-100k test-fast test-containers dev-up dev-down functional bench compile check lint fmt fmt-check hooks clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

deno: ## install Deno $(DENO_VERSION) from npm into .tools/ unless one is on PATH
	@if ! command -v deno >/dev/null 2>&1 && [ ! -x $(TOOLS)/node_modules/.bin/deno ]; then \
	  command -v npm >/dev/null || { echo "npm is required to bootstrap Deno (apt-get install -y npm)"; exit 1; }; \
	  echo ">> installing deno@$(DENO_VERSION) from npm into $(TOOLS)"; \
	  mkdir -p $(TOOLS) && cp tools/deno-bootstrap/package.json tools/deno-bootstrap/package-lock.json $(TOOLS)/ && \
	  npm ci --prefix $(TOOLS) --no-audit --no-fund --silent; \
	fi
	@$(DENO) --version | head -1

system-deps: ## apt-get the system packages the tests and demo use (root on Debian only)
	@missing=0; for p in $(APT_PROBES); do [ -e $$p ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo ">> apt-get install $(APT_PACKAGES)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "!! some system packages are missing ($(APT_PACKAGES)); install them as root (tests needing them will skip, or fail under CI=true)"; \
	  fi; \
	fi

deps: deno system-deps ## fetch npm packages into node_modules (lockfile-pinned)
	@$(DENO) install --frozen --quiet

demo: deps ## run the whole pipeline on bundled synthetic data with the embedded defaults
	$(DENO) task demo

test: deps ## run the test suite (fmt, lint, type check, then deno test)
	$(DENO) fmt --check
	$(DENO) lint
	$(DENO) task check
	$(DENO) task test

test-faults: deps ## run the fault-injection suite (tests/faults) and print its wall time
	@start=$$(date +%s); rc=0; $(DENO) task test-faults || rc=$$?; \
	echo "== fault suite wall time: $$(( $$(date +%s) - start )) s"; exit $$rc

test-faults-pg-restart: deps ## the PostgreSQL-restart fault case alone (also part of test-faults; ~20 s)
	CI=true $(DENO) task test-faults-pg-restart

test-queue-100k: deps ## exactly-once, 16 PostgreSQL workers over 100,000 items alone (issue 17; ~30 s)
	$(DENO) test -A --filter 100000 common/manifest/queue/complete_batch_test.ts

test-containers: deps ## build the stage images with podman and run them (root; tests/containers/)
	SLUICE_CONTAINER_TESTS=1 CONTAINERS_CONF=$${CONTAINERS_CONF:-$(CURDIR)/infra/container/containers.conf} \
	  $(DENO) test -A tests/containers/

# Dev stack (.devcontainer/compose.yaml, podman-compose). Functional tests run from this host
# against its published ports, through the same harness variables the suite already honours.
DEV_COMPOSE := podman-compose -p sluice-dev -f .devcontainer/compose.yaml
ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
DEV_BUILD_ARGS := --podman-build-args "--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt"
endif
# (RustFS has no SQS: tests that need SQS, like stages/ingest/reconcile_test.ts, stay off this list.)
FUNCTIONAL_TESTS := common/manifest/contract_test.ts common/manifest/claim_test.ts \
	common/objectstore/contract_test.ts common/objectstore/s3_test.ts stages/ingest/run_once_test.ts \
	stages/ingest/webhook_test.ts stages/normalize/stage_s3_pg_test.ts
FUNCTIONAL_ENV := SLUICE_TEST_POSTGRES_URL=postgres://sluice:sluice@127.0.0.1:5432/sluice \
	SLUICE_TEST_S3_ENDPOINT=http://127.0.0.1:9000 SLUICE_TEST_S3_REGION=us-east-1 \
	SLUICE_TEST_S3_ACCESS_KEY_ID=sluice SLUICE_TEST_S3_SECRET_ACCESS_KEY=sluice-secret

dev-up: ## start the dev stack: RustFS, PostgreSQL, MLflow, Prometheus, Grafana, init (podman-compose)
	$(DEV_COMPOSE) $(DEV_BUILD_ARGS) up -d --build
	@echo "S3 http://127.0.0.1:9000  PostgreSQL 127.0.0.1:5432  MLflow http://127.0.0.1:5000  Prometheus http://127.0.0.1:9090  Grafana http://127.0.0.1:3000"

dev-down: ## stop the dev stack (volumes are kept; podman volume rm sluice-dev_* to reset)
	$(DEV_COMPOSE) down

functional: deps ## run the functional tests against the dev stack's PostgreSQL and RustFS (make dev-up first)
	$(FUNCTIONAL_ENV) $(DENO) test -A $(FUNCTIONAL_TESTS)

bench: deps ## run the benchmarks (deno task bench [name])
	$(DENO) task bench $(BENCH)

compile: deps ## compile each stage into one binary under dist/ (needs Deno's denort base)
	$(DENO) task compile

check: deps ## type check
	$(DENO) task check

lint: deps
	$(DENO) lint

fmt: deps
	$(DENO) fmt

hooks: deps ## install the lefthook git hooks
	$(DENO) run -A npm:lefthook@2.2.1 install

clean: ## remove local state (.sluice/) and build outputs
	rm -rf .sluice dist
