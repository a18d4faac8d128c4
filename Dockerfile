# Production image: two stages. The builder compiles wheels for the production lock only (requirements.txt, hashed);
# the runtime stage has no compiler, runs as an unprivileged user, and carries collected static files (hashed and
# compressed by whitenoise) and compiled translations built here, never committed.
# syntax=docker/dockerfile:1
FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential gettext && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --require-hashes -r requirements.txt
COPY . /app
WORKDIR /app
# Build-time settings only: a throwaway key; nothing here touches a database.
RUN DJANGO_DEBUG=0 SECRET_KEY=build-only-not-secret VAR_DIR=/tmp/var \
    /opt/venv/bin/python manage.py compilemessages --ignore=.venv -v 0 \
 && DJANGO_DEBUG=0 SECRET_KEY=build-only-not-secret VAR_DIR=/tmp/var STATIC_ROOT=/app/staticfiles \
    /opt/venv/bin/python manage.py collectstatic --noinput -v 0

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings VAR_DIR=/var/lib/retention STATIC_ROOT=/app/staticfiles PORT=8000
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl && rm -rf /var/lib/apt/lists/* \
 && groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /var/lib/retention/media && chown -R app:app /var/lib/retention
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=app:app /app /app
WORKDIR /app
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/health/" || exit 1
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
