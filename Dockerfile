# The exporter image: slim Python, non-root, health-checked. (Built by docker-compose.yml; there is
# no Docker engine on the development machines, so this file is checked by `docker compose config`
# only — see issue "dashboards and docker-compose stack".)
FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin exporter
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install --no-cache-dir . && rm -rf /src
USER exporter
EXPOSE 9761 9763
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9761/-/healthy', timeout=2).status == 200 else 1)"
ENTRYPOINT ["marketplace-exporter"]
CMD ["run", "--config.file=/etc/marketplace-exporter/config.yml"]
