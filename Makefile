# marketplace-exporter developer tasks. Plain GNU make; `make help` lists the targets.
#
# The venv is rebuilt only when pyproject.toml changes (stamp file). `deps` installs the real
# Prometheus/Alertmanager/blackbox/Chromium/wrk binaries the stack tests and the benchmark run;
# it needs root and only installs what `command -v` cannot find.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed-stamp
# extra arguments for pytest, e.g. `make test PYTEST_ARGS='-k prometheus -x'`
PYTEST_ARGS ?=
# extra arguments for the demo, e.g. `make demo DEMO_ARGS=--web.listen-address=127.0.0.1:9800`
DEMO_ARGS ?=
# config files `make check-config` validates
CONFIG ?= exporter/marketplace_exporter/examples/demo.yml

# binary:debian-package pairs that `deps` makes sure exist
DEPS := prometheus:prometheus \
        prometheus-alertmanager:prometheus-alertmanager \
        prometheus-blackbox-exporter:prometheus-blackbox-exporter \
        chromium:chromium \
        wrk:wrk \
        curl:curl \
        openssl:openssl \
        /usr/lib/postgresql/15/bin/initdb:postgresql \
        shellcheck:shellcheck \
        node:nodejs \
        npm:npm

.PHONY: help venv deps test demo bench check-config clean distclean
.PHONY: dashboards dashboard-schema compose-demo-config compose-secrets kubernetes
.PHONY: dist image-deps image-base image image-test

# --- release artefacts (docs/release.md) ---------------------------------------------------------------------------
# the image `make image` builds and `make image-test` runs
IMAGE ?= marketplace-exporter:dev
IMAGE_DIR := build/image
# buildah/podman keep this project's images under build/image (vfs: no overlay mounts; runc: this kernel's hybrid
# cgroups are refused by crun)
CONTAINERS := --root $(abspath $(IMAGE_DIR))/storage --runroot $(abspath $(IMAGE_DIR))/run --storage-driver vfs
PODMAN := podman $(CONTAINERS) --runtime runc --cgroup-manager cgroupfs
# no Docker Hub here: the Dockerfile's BASE_IMAGE is replaced by Debian bookworm + Debian's python3.11 (debootstrap)
BASE_IMAGE_LOCAL := localhost/marketplace-exporter-base:bookworm
DEBIAN_MIRROR ?= http://deb.debian.org/debian
IMAGE_DEPS := buildah:buildah podman:podman debootstrap:debootstrap runc:runc
comma := ,

help: ## list the targets
	@echo "usage: make <target>"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-13s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## create .venv and install the package with its dev extras (when pyproject.toml changed)

$(VENV_STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

deps: ## install the missing Debian binaries (prometheus, alertmanager, blackbox, chromium, wrk, postgresql 15, node/npm, kubectl); root only
	@missing=""; \
	for pair in $(DEPS); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps: missing:$$missing"; \
		echo "deps: not root, not installing; run: sudo apt-get install -y --no-install-recommends$$missing"; \
		exit 0; \
	fi; \
	echo "deps: installing$$missing"; \
	apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

image-deps: ## install buildah, podman, debootstrap and runc (Debian) for `make image`; root only
	@$(MAKE) --no-print-directory deps DEPS="$(IMAGE_DEPS)"

# pytest exits 5 when it collected no tests: for us that is a broken suite, not a pass
test: venv deps ## run the whole test suite (set REQUIRE_STACK=1 to fail instead of skip on missing binaries)
	@$(VENV)/bin/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

demo: venv ## run the simulator and the exporter with the built-in demo config
	$(VENV)/bin/marketplace-exporter demo $(DEMO_ARGS)

bench: venv deps ## run the benchmarks: probe cost vs blackbox, 1k-50k checks at scale, traffic hook overhead, OTLP ingest, bridge throughput, fault-to-chat latency, deploy-mark loop stall, accounts files, redactor, shard moves
	$(VENV)/bin/python bench/probe_cost.py
	$(VENV)/bin/python bench/scale.py
	$(VENV)/bin/python bench/traffic_overhead.py
	$(VENV)/bin/python bench/otlp_ingest.py
	$(VENV)/bin/python bench/bridge_throughput.py
	$(VENV)/bin/python bench/alert_latency.py
	$(VENV)/bin/python bench/deploy_marks.py
	$(VENV)/bin/python bench/web_auth.py
	$(VENV)/bin/python bench/accounts_files.py
	$(VENV)/bin/python bench/redactor.py
	$(VENV)/bin/python bench/shard_moves.py

check-config: venv ## validate the exporter config(s) in CONFIG (default: the demo config); CHECK_ARGS=--syntax-only lints without secrets
	@for file in $(CONFIG); do $(VENV)/bin/marketplace-exporter check-config $(CHECK_ARGS) "$$file" || exit 1; done

dashboards: venv ## regenerate dashboards/*.json from the *.dashboard.py sources
	$(VENV)/bin/python dashboards/generate.py

kubernetes: venv ## regenerate deploy/kubernetes (kustomize base, overlays, PrometheusRule, dashboards ConfigMaps)
	$(VENV)/bin/python -m marketplace_exporter.kube

dashboard-schema: ## re-derive dashboards/schema/*.schema.json from @grafana/schema (npm; versions in package-lock.json)
	cd dashboards/schema && npm ci --no-audit --no-fund --ignore-scripts && node derive.mjs

compose-demo-config: ## rewrite deploy/exporter.demo.yml: the built-in demo config probing the compose `simulator`
	{ printf '%s\n' "# GENERATED from exporter/marketplace_exporter/examples/demo.yml with the simulator's address set to" \
	  "# the compose service (http://127.0.0.1:9763 -> http://simulator:9763); tests/unit/test_compose.py" \
	  "# fails when the two drift. Regenerate:" "#   make compose-demo-config"; \
	  sed 's#http://127.0.0.1:9763#http://simulator:9763#g' exporter/marketplace_exporter/examples/demo.yml; \
	} > deploy/exporter.demo.yml

compose-secrets: ## write deploy/grafana-admin-password (random, mode 600, git-ignored) unless it exists
	@test -s deploy/grafana-admin-password && echo "deploy/grafana-admin-password exists: kept" || \
	  { umask 077; openssl rand -base64 24 | tr -d '\n' > deploy/grafana-admin-password; \
	    echo "wrote deploy/grafana-admin-password (Grafana's admin password; log in as admin with it)"; }

dist: venv ## build the wheel and the sdist into dist/ (version from the git tag; docs/release.md)
	rm -rf dist
	$(VENV)/bin/hatchling build --target wheel,sdist --directory dist

image-base: image-deps ## the Debian bookworm + python3 base image (debootstrap), instead of python:3.11-slim
	@if $(PODMAN) image exists $(BASE_IMAGE_LOCAL); then echo "image-base: $(BASE_IMAGE_LOCAL) present"; exit 0; fi; \
	set -e; mkdir -p $(IMAGE_DIR); rootfs=$$(mktemp -d); chmod 755 "$$rootfs"; trap 'rm -rf "$$rootfs"' EXIT; \
	echo "image-base: debootstrap bookworm (minbase + python3, python3-venv, ca-certificates) from $(DEBIAN_MIRROR)"; \
	debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$$rootfs" $(DEBIAN_MIRROR) \
		> $(IMAGE_DIR)/debootstrap.log 2>&1 || { tail -20 $(IMAGE_DIR)/debootstrap.log; exit 1; }; \
	rm -rf "$$rootfs"/var/cache/apt/archives/*.deb "$$rootfs"/var/lib/apt/lists/* "$$rootfs"/usr/share/doc/* \
		"$$rootfs"/usr/share/man/*; \
	tar -C "$$rootfs" -c . | $(PODMAN) import --change 'CMD ["python3"]' - $(BASE_IMAGE_LOCAL)

image: venv image-base ## build the Dockerfile with buildah (no Docker engine) as $(IMAGE), on the debootstrap base
	buildah $(CONTAINERS) bud --isolation chroot --format docker \
		--build-arg BASE_IMAGE=$(BASE_IMAGE_LOCAL) \
		--build-arg VERSION=$$($(VENV)/bin/hatchling version) \
		--build-arg REVISION=$$(git rev-parse HEAD) --build-arg BRANCH=$$(git rev-parse --abbrev-ref HEAD) \
		$(if $(PIP_CERT),--secret id=pip-ca$(comma)src=$(PIP_CERT)) -t $(IMAGE) .
	$(PODMAN) image prune --force >/dev/null  # the previous build, untagged now

image-test: venv image ## build the image, then run it with podman: demo, build_info, check-config, assets export
	IMAGE_UNDER_TEST=$(IMAGE) IMAGE_PODMAN="$(PODMAN)" $(VENV)/bin/pytest -q tests/image $(PYTEST_ARGS)

clean: ## remove caches and build output (keeps .venv)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .bench-out exporter/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
