# syntax=docker/dockerfile:1.7
# One image for every Pricewire service; the command picks the service:
#   docker run pricewire python -m pricewire_edge        (the default)
#   docker run pricewire python -m pricewire_ingest      (also pricewire_ingest.simulator)
#   docker run pricewire python -m pricewire_registry
#   docker run pricewire python -m pricewire_stats
# Every service listens on $PRICEWIRE_PORT (8000) and serves /health, /ready and /metrics.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# the venv is built against the runtime image's own interpreter (same base image), compiled to
# bytecode once here so a read-only container never tries to write .pyc files
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Dependencies first, from the lock file alone: a source change does not reinstall them.
# Every workspace member's pyproject.toml is needed for `--frozen` to resolve the workspace
# (tests/test_deploy_manifests.py checks that this list covers every member).
COPY pyproject.toml uv.lock ./
COPY libs/contracts/pyproject.toml libs/contracts/
COPY libs/common/pyproject.toml libs/common/
COPY services/ws-edge/pyproject.toml services/ws-edge/
COPY services/market-ingest/pyproject.toml services/market-ingest/
COPY services/session-registry/pyproject.toml services/session-registry/
COPY services/stats/pyproject.toml services/stats/
COPY tools/dev/pyproject.toml tools/dev/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace

# Then the workspace packages themselves, as real (non-editable) installs so the runtime
# stage needs only the venv, not the source tree.
COPY libs libs
COPY services services
COPY tools tools
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
RUN groupadd --system --gid ${UID} pricewire \
 && useradd --system --uid ${UID} --gid ${UID} --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin pricewire \
 && mkdir -p /app/logs \
 && chown ${UID}:${UID} /app/logs
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PRICEWIRE_HOST=0.0.0.0 \
    PRICEWIRE_PORT=8000 \
    PRICEWIRE_LOG_FORMAT=json
WORKDIR /app
USER ${UID}:${UID}
EXPOSE 8000
# /health answers as long as the process is alive; /ready (NATS up) is for load balancers
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PRICEWIRE_PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "pricewire_edge"]
