# syntax=docker/dockerfile:1
#
# Hybrid LLM gateway image.
#   build:  docker build -t hybrid-llm-gateway .
#   run:    docker run -p 8080:8080 hybrid-llm-gateway serve --host 0.0.0.0 --port 8080 --demo
# The builder stage turns the project into a wheel and installs it with its runtime
# dependencies into /opt/venv; the runtime stage copies only that venv, the shipped
# policies and nothing of the build toolchain.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
# A wheel first, then an install of that wheel only: the venv gets the runtime
# dependencies of pyproject.toml and none of the dev extras.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install -c constraints.txt /wheels/*.whl


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="hybrid-llm-gateway" \
      org.opencontainers.image.description="OpenAI-compatible gateway routing each request to self-hosted or proprietary models by sensitivity, task, cost and budget." \
      org.opencontainers.image.licenses="Apache-2.0"

# LITELLM_LOCAL_MODEL_COST_MAP: use the price map shipped in the wheel instead of
# fetching one at import time (the container may have no egress but its upstreams).
# XDG_CACHE_HOME: libraries that cache to $HOME write under /tmp, which stays
# writable when the root filesystem is mounted read-only.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PATH=/opt/venv/bin:$PATH \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    XDG_CACHE_HOME=/tmp/.cache \
    GATEWAY_POLICIES=/app/policies \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080

RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin gateway

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Owned by root and read-only to the gateway user; mount a volume or a ConfigMap
# over /app/policies to replace them (the gateway reloads on change and on SIGHUP).
COPY policies /app/policies

USER 10001:10001
EXPOSE 8080

# slim images have no curl: the interpreter that runs the gateway does the check.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["gateway"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
