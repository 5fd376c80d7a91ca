# The marketplace-exporter image: the exporter, the bridge and the simulator are subcommands of one
# package, so docker-compose.yml runs all three from this image. Slim Python, a non-root user,
# a health check (HEALTHCHECK_URL: each compose service points it at its own /-/healthy).
# There is no Docker engine on the development machines: tests/unit/test_compose.py checks this file
# (pinned base, non-root USER, HEALTHCHECK, exposed ports, state directories) but cannot build it.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HEALTHCHECK_URL=http://127.0.0.1:9761/-/healthy

RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin exporter \
 && mkdir -p /var/lib/marketplace-exporter /var/lib/marketplace-bridge \
 && chown exporter:exporter /var/lib/marketplace-exporter /var/lib/marketplace-bridge

WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install . && rm -rf /src

WORKDIR /var/lib/marketplace-exporter
USER 10001:10001
# exporter, bridge, simulator
EXPOSE 9761 9762 9763
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=2).status == 200 else 1)"]
ENTRYPOINT ["marketplace-exporter"]
CMD ["run", "--config.file=/etc/marketplace-exporter/config.yml"]
