# The two commands people need: `make demo` (the whole system locally) and `make test` (everything CI runs).
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
CACHE := $(HOME)/.cache/hsm-secrets-operator

.PHONY: help setup apt uv-sync pants cluster-build images cluster-up cluster-down demo demo-down proto crds pants-lock lint test test-pants test-e2e bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: apt uv-sync pants cluster-build images ## install apt packages, uv, the workspace, Pants; build the cluster and images (idempotent)

apt: ## install the Debian packages the project needs (skipped when already present)
	@bash scripts/apt.sh

uv-sync:
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet 'uv>=0.8,<0.14'
	@$(UV) sync --frozen --all-packages --quiet

pants: ## install Pants into the cache, unless the official launcher is installed (idempotent)
	@./pants --version >/dev/null

cluster-build: ## build (or find cached) etcd, the Kubernetes control plane, kubelet, kube-proxy, kubectl
	$(RUN) python -m devcluster build

images: ## build the e2e images with Pants (tag e2e, agent with SoftHSM2 and vpcd) and the sandbox image
	$(RUN) python -m devcluster images --tag e2e --agent-target testtokens

cluster-up: ## a local cluster with two real nodes running the e2e images (prints KUBECONFIG)
	$(RUN) python -m devcluster up

cluster-down:
	$(RUN) python -m devcluster down

demo: setup ## the whole system on the local cluster with a synced sample secret, left running
	$(RUN) python -m devcluster demo

demo-down: ## stop the demo
	$(RUN) python -m devcluster demo-down

proto: ## regenerate the gRPC modules under libs/hsmproto/src/hsmproto from libs/hsmproto/proto
	$(RUN) python libs/hsmproto/generate.py

crds: ## regenerate the CRD manifests from hsm_common.models
	$(RUN) python -m hsm_common.crdgen deploy/kustomize/base/crds

pants-lock: ## after a change to uv.lock: export its requirements for Pants and regenerate Pants' lockfile
	$(UV) export --frozen --all-packages --no-emit-workspace --no-hashes --no-header --quiet \
		-o 3rdparty/python/requirements.txt
	./pants generate-lockfiles

lint: ## ruff, mypy --strict on the shipped code (through Pants), import-linter contracts, hadolint
	@# ruff runs outside Pants: Pants 2.17 calls ruff without the `check` subcommand that ruff 0.5+ requires.
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	./pants check ::
	$(RUN) lint-imports
	$(RUN) hadolint services/*/Dockerfile

test: setup lint test-pants test-containers test-e2e ## everything CI runs

test-pants: ## every package's tests and the static tests, one Pants test target per file
	@# --force: every test runs again, rather than a result an earlier run on this machine left in Pants' cache
	@# (the tests drive SoftHSM2, pcscd and umockdev, which live outside what Pants hashes).
	./pants test --force ::

test-e2e:
	@# The host comparison first and alone: no other local cluster may run while it checks the host.
	$(RUN) python scripts/pytest_strict.py tests/e2e/test_host_hygiene.py
	@# The slowest tests are listed at the end: where CI's time goes.
	$(RUN) python scripts/pytest_strict.py tests/e2e --ignore=tests/e2e/test_host_hygiene.py --durations=15

.PHONY: test-containers
test-containers: ## the images (from `make images`) in containers: testcontainers on podman's Docker API
	$(RUN) python scripts/pytest_strict.py tests/containers

bench: ## run every benchmark and print its figures
	@for b in bench/*.py; do echo "== $$b"; $(RUN) python $$b || exit 1; done
