# One image for every part of callrec: the entrypoint is the `callrec` command, the role is the argument.
#
#   docker run IMAGE api        # REST API            (GET /health on 8080)
#   docker run IMAGE worker     # Temporal worker     (no port)
#   docker run IMAGE recorder   # built-in recorder   (GET /health on 8090)
#   docker run IMAGE migrate    # create or upgrade the catalog schema, then exit
#   docker run IMAGE ops list   # operator tools
#
# Everything is configured with CALLREC_* environment variables (README: Settings); nothing secret is
# baked in. No HEALTHCHECK instruction: the worker and one-shot commands have nothing to probe, so the
# probe belongs to the service that runs `api` or `recorder`. The image has no curl; use Python:
#   python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=5)"
# (it exits non-zero on a refused connection and on the 503 that /health answers when a dependency is down).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the project and its runtime dependencies into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/callrec
WORKDIR /src
# Only what the package needs: pyproject (dependencies), README (the package's readme) and the code.
# No tests, no dev/test extras, no .env.
COPY pyproject.toml README.md ./
COPY callrec ./callrec
RUN /opt/callrec/bin/pip install --upgrade pip \
    && /opt/callrec/bin/pip install . \
    && /opt/callrec/bin/callrec --help >/dev/null

# ---- runtime ----
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="callrec" \
      org.opencontainers.image.description="Durable call-recording service: API, Temporal worker, built-in recorder"

# A fixed, numeric, unprivileged user (orchestrators can check runAsNonRoot against a number).
RUN groupadd --system --gid 10001 callrec \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/callrec --shell /usr/sbin/nologin callrec \
    && mkdir -p /var/lib/callrec \
    && chown 10001:10001 /var/lib/callrec \
    && chmod 0700 /var/lib/callrec

COPY --from=build /opt/callrec /opt/callrec

# Logs: a JSON object per line on standard error (README: Logs); CALLREC_LOG_FORMAT=text for key=value lines.
ENV PATH=/opt/callrec/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CALLREC_DATA_DIR=/var/lib/callrec \
    CALLREC_LOG_FORMAT=json

# Writable by the service user only (0700; callrec creates its files 0600): the recorder's in-progress files
# (<data dir>/recorder), and the catalog and objects only when no database and no S3 endpoint are configured
# (not what a deployment wants).
WORKDIR /var/lib/callrec
USER 10001:10001

EXPOSE 8080 8090
ENTRYPOINT ["callrec"]
CMD ["api"]
