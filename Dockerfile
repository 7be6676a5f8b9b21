# syntax=docker/dockerfile:1
# The slamon image: `slamon worker | produce | topics | rules | ...` (entrypoint `slamon`), plus the demo's
# live traffic generator and console webhook (python -m deploy.local.feed / deploy.local.webhook).
#
#   docker build -t slamon:0.1.0 .
#   docker run --rm slamon:0.1.0 validate /app/examples/contracts.yaml
#
# Configuration is by SLAMON_* environment variables (docs/configuration.md); secrets (Kafka SASL password,
# TLS key password) by file or by the orchestrator's secret store, never baked into the image.
FROM python:3.11.11-slim-bookworm AS build
# The package as a wheel, with its compiled hot paths (native/: the `--jobs` router, the open-clock index's first
# build, a restore's ticket records). The Rust toolchain is copied from the official Rust image into this stage
# only; the image below gets the wheel, not the toolchain.
COPY --from=rust:1.83.0-slim-bookworm /usr/local/cargo /usr/local/cargo
COPY --from=rust:1.83.0-slim-bookworm /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY streams ./streams
COPY alerts ./alerts
COPY slamon ./slamon
COPY ingest ./ingest
COPY store ./store
COPY native ./native
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    # fail the build, not the container, when a module imports something the package does not declare, or when
    # a compiled hot path is missing (the install would go on without it: they are optional where Rust is absent)
    && python -c "import slamon.cli, streams.app, streams.cli, streams.config, alerts.cli, alerts.rules, ingest.cli, store.cli" \
    && python -c "import slamon._router, monitor._engine, monitor._open_clocks, monitor._ticket_records" \
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
