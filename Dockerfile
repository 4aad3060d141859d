# The reconciler daemon's image: `reconciler run` as a non-root numeric user, with git and ssh for
# Git sources and nothing to build with. Build from the checkout's top level:
#
#   docker build -t reconciler:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%FT%TZ)" .
#
# Base image. Both stages use the same one (the venv built in the first runs on the second's
# Python). It is pinned by version here; pin it by digest too where a registry is reachable, by
# replacing both FROM lines' image with the `name:tag@sha256:<digest>` form, e.g.
#
#   FROM python:3.11.14-slim-bookworm@sha256:<digest> AS build
#
# where <digest> is the 64 hex digits printed by any of
#
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
#   crane digest python:3.11.14-slim-bookworm
#   skopeo inspect --format '{{.Digest}}' docker://docker.io/library/python:3.11.14-slim-bookworm
#
# (the multi-arch index's digest, so one pin serves amd64 and arm64). Our machines reach no
# container registry, so the digest is left for the release pipeline to fill in; the Debian
# package versions pinned below are bookworm's and change with the base image: bump them
# together (`apt-cache policy git openssh-client` inside the new base prints them).

# --- build: a wheel of the project, installed with its dependencies into /opt/venv -------------
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
COPY simulator ./simulator

# The wheel keeps the .py sources: `reconciler settings --defaults` reads the settings' field
# docstrings from them at run time. Dependencies are resolved by pip from pyproject.toml's ranges.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir /wheels/reconciler-*.whl \
    && /opt/venv/bin/reconciler --version

# --- final: the runtime, without compilers, pip caches or the source tree -----------------------
FROM python:3.11.14-slim-bookworm

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="reconciler" \
      org.opencontainers.image.description="A GitOps reconciler daemon: supply chains from Git to Kubernetes, with a simulator." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"

# git and ssh for the Git sources (clone, fetch, ls-remote over https and ssh); no compiler, no
# headers. Versions are pinned (bookworm's current ones; see the note on the base image above).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        git=1:2.39.5-0+deb12u3 \
        openssh-client=1:9.2p1-2+deb12u10 \
    && rm -rf /var/lib/apt/lists/*

# A numeric non-root user (65532, as distroless's "nonroot"), so Kubernetes' runAsNonRoot can
# check it without a passwd lookup. /var/lib/reconciler is the data dir (artifacts, Git caches):
# the chart mounts a writable volume there, the root file system staying read-only.
RUN groupadd --system --gid 65532 reconciler \
    && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/reconciler \
        --no-create-home --shell /usr/sbin/nologin reconciler \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/reconciler

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/reconciler \
    RECONCILER_DAEMON_DATA_DIR=/var/lib/reconciler

WORKDIR /var/lib/reconciler
USER 65532:65532

# Operations endpoints (--listen), artifact server (--artifacts-listen), webhook receiver.
EXPOSE 8080 9090 9292

# For `docker run`; Kubernetes uses the chart's probes on the same endpoint instead. The default
# --listen is 127.0.0.1:8080, and a ":8080" listen answers on loopback too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["reconciler", "run"]
