# syntax=docker/dockerfile:1
# The marketplace-exporter image: the exporter, the bridge and the simulator are subcommands of one
# package, so docker-compose.yml runs all three from this image. Slim Python, a non-root user, a
# health check (HEALTHCHECK_URL: each compose service points it at its own /-/healthy), and the
# assets (`marketplace-exporter assets export DIR`: dashboards, alert rules, Alertmanager/Grafana configs).
#
#   docker build -t marketplace-exporter:dev .                       # or: docker compose build
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#                --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) -t marketplace-exporter:0.1.0 .
#
# The build context has no .git (.dockerignore), so the version and the build_info revision/branch
# come from the build args (without them: 0.0.0+unknown and "unknown"). Behind a TLS-intercepting
# proxy pass its CA bundle as a secret: --secret id=pip-ca,src=/path/to/ca.pem; a PyPI mirror with
# --build-arg PIP_INDEX_URL=https://mirror.example/simple.
# `make image` builds this same file with buildah (no Docker engine needed) on a Debian bookworm base
# made by debootstrap, passing BASE_IMAGE; see docs/release.md.
ARG BASE_IMAGE=python:3.11.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG VERSION
ARG REVISION
ARG BRANCH
ARG PIP_INDEX_URL
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md LICENSE NOTICE ./
COPY exporter ./exporter
COPY dashboards ./dashboards
COPY alert-rules ./alert-rules
COPY deploy ./deploy
# a venv, not the system site-packages: the same on python:3.11-slim and on Debian's python3 (PEP 668)
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && if [ -n "${VERSION:-}" ]; then export SETUPTOOLS_SCM_PRETEND_VERSION="${VERSION}"; fi \
 && export MARKETPLACE_EXPORTER_REVISION="${REVISION:-}" MARKETPLACE_EXPORTER_BRANCH="${BRANCH:-}" \
 && python3 -m venv /opt/marketplace-exporter \
 && /opt/marketplace-exporter/bin/pip install --no-cache-dir --disable-pip-version-check /src

FROM ${BASE_IMAGE}
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="marketplace-exporter" \
      org.opencontainers.image.description="Prometheus exporter for marketplace seller APIs, with the deploy gate and the chat-robot bridge" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/marketplace-exporter/marketplace-exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/marketplace-exporter/bin:$PATH \
    HEALTHCHECK_URL=http://127.0.0.1:9761/-/healthy

RUN groupadd --system --gid 10001 exporter \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin exporter \
 && mkdir -p /var/lib/marketplace-exporter /var/lib/marketplace-bridge \
 && chown exporter:exporter /var/lib/marketplace-exporter /var/lib/marketplace-bridge

COPY --from=build /opt/marketplace-exporter /opt/marketplace-exporter

WORKDIR /var/lib/marketplace-exporter
USER 10001:10001
# exporter, bridge, simulator
EXPOSE 9761 9762 9763
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=2).status == 200 else 1)"]
ENTRYPOINT ["marketplace-exporter"]
CMD ["run", "--config.file=/etc/marketplace-exporter/config.yml"]
