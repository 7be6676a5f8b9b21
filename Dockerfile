# syntax=docker/dockerfile:1
# The slamon image: `slamon worker | produce | topics | rules | ...` (entrypoint `slamon`), plus the demo's
# live traffic generator and console webhook (python -m deploy.local.feed / deploy.local.webhook).
#
#   docker build -t slamon:0.1.0 .
#   docker run --rm slamon:0.1.0 validate /app/examples/contracts.yaml
#
# Configuration is by SLAMON_* environment variables (docs/configuration.md); secrets (Kafka SASL password,
# TLS key password) by file or by the orchestrator's secret store, never baked into the image.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# dependencies and the package first (cached while only examples/deploy change)
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY streams ./streams
COPY alerts ./alerts
COPY slamon ./slamon
COPY ingest ./ingest
COPY store ./store
# the `--jobs` reader's compiled router: this image has no Rust toolchain, so the install skips it (optional) and
# `--jobs` reads with the Python reference router
COPY native ./native
RUN pip install . \
    # fail the build, not the container, when a module imports something the package does not declare
    && python -c "import slamon.cli, streams.app, streams.cli, streams.config, alerts.cli, alerts.rules, ingest.cli, store.cli" \
    && slamon --help >/dev/null

COPY examples ./examples
COPY deploy/local/__init__.py deploy/local/feed.py deploy/local/webhook.py ./deploy/local/

RUN useradd --system --uid 10001 --gid 0 --home-dir /var/lib/slamon --shell /usr/sbin/nologin slamon \
    && mkdir -p /var/lib/slamon \
    && chown 10001:0 /var/lib/slamon \
    && chmod 0770 /var/lib/slamon

ENV SLAMON_CONTRACTS=/app/examples/contracts.yaml \
    SLAMON_DATA_DIR=/var/lib/slamon \
    SLAMON_METRICS_BIND=0.0.0.0:9108

USER 10001
VOLUME ["/var/lib/slamon"]
EXPOSE 9108
ENTRYPOINT ["slamon"]
CMD ["worker"]
