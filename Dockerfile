# syntax=docker/dockerfile:1
# handoff's image: configured only through environment variables (docs/OPERATIONS.md).
#   docker build -t handoff .
#   docker run --rm --env-file handoff.env handoff handoff migrate   # once per release
#   docker run -d -p 8000:8000 --env-file handoff.env handoff        # then serve
# tests/test_container.py lints this file and runs its install and start commands.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /srv/handoff
COPY . .
# Installed in place (editable): the code finds migrations/ and email_templates/ beside its
# package, so the source folder is the installation. Only [project] dependencies: no test extras.
# Compiled here because the final image's code folder is read-only to the service.
RUN pip install --no-cache-dir -e . \
    && python -m compileall -q app migrations \
    && pip uninstall --yes pip setuptools

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HANDOFF_HOST=0.0.0.0 \
    HANDOFF_PORT=8000 \
    HANDOFF_LOG_FORMAT=json
RUN groupadd --system --gid 10001 handoff \
    && useradd --system --uid 10001 --gid handoff --home-dir /var/lib/handoff \
       --shell /usr/sbin/nologin handoff \
    && mkdir -p /var/lib/handoff \
    && chown handoff:handoff /var/lib/handoff
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/handoff /srv/handoff
# Relative paths in the defaults (var/handoff.db, var/outbox) land in this writable folder;
# the code itself stays read-only and owned by root.
WORKDIR /var/lib/handoff
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HANDOFF_PORT', '8000') + '/healthz', timeout=4)"]
CMD ["handoff", "serve"]
