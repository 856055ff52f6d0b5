# Image for the etl sync job. BASE defaults to the official slim image; any Debian-based
# image with python3 + venv works (CI here uses localhost/etl-base:bookworm made by
# .ci/container-base.sh, since no container registry is reachable).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
# Dependencies first, from pyproject alone, so with layer caching (docker build, buildah
# --layers) a source change does not reinstall them.
COPY pyproject.toml /src/pyproject.toml
RUN python3 -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]; \
print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgres"]))' > /tmp/req.txt \
 && /opt/venv/bin/pip install -r /tmp/req.txt
COPY . /src
RUN /opt/venv/bin/pip install "/src[postgres]" \
 && /opt/venv/bin/pip uninstall -y setuptools \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
# Metadata first and the venv last: with layer caching a source change then rebuilds
# only the two COPY layers.
# Fixed uid so volume permissions and runAsNonRoot policies are predictable.
RUN groupadd --gid 10001 etl \
 && useradd --uid 10001 --gid etl --no-create-home --home-dir /app --shell /usr/sbin/nologin etl \
 && mkdir -p /app/var \
 && chown etl:etl /app/var
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    ETL_CONFIG=/app/config/etl.toml \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ETL_LOG_FORMAT=json
EXPOSE 8000
# No curl in slim images: probe /healthz with the venv's python (urlopen raises on non-2xx).
# The daemon's port setting is ETL_DAEMON_HEALTH_PORT; ETL_HEALTH_PORT is accepted as an alias.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; port = os.environ.get('ETL_DAEMON_HEALTH_PORT') or os.environ.get('ETL_HEALTH_PORT') or '8000'; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
# Exec form: python is PID 1 and receives SIGTERM directly for a graceful stop.
CMD ["/opt/venv/bin/python", "-m", "etl", "daemon"]
# Numeric so the runtime can check non-root without reading /etc/passwd.
USER 10001:10001
COPY config/ /app/config/
COPY --from=build /opt/venv /opt/venv
