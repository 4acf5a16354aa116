# syntax=docker/dockerfile:1.7
# Multi-stage: front-end assets (npm), the locked Python environment (uv), a slim non-root runtime.

FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
 && mkdir -p static/vendor \
 && cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css

FROM python:3.13-slim-bookworm AS python-deps
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PROJECT_ENVIRONMENT=/opt/venv
# Pinned: the same uv that wrote uv.lock reads it.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /build
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

FROM python:3.13-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_ENV=production \
    STATIC_ROOT=/app/staticfiles \
    DATA_DIR=/app/data \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-metrics \
    PORT=8000
RUN groupadd --system app && useradd --system --gid app --home /app app
WORKDIR /app
COPY --from=python-deps /opt/venv /opt/venv
COPY --chown=app:app . .
COPY --from=assets --chown=app:app /build/static/vendor static/vendor
# Static files are collected at build time; the dummy values satisfy production settings only here.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(60))')" \
    ALLOWED_HOSTS=build DATABASE_URL=postgres://build@localhost/build \
    PUBLIC_BASE_URL=https://build SMS_PROVIDER=twilio \
    CELERY_BROKER_URL=redis://build REDIS_URL=redis://build \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/data /tmp/prometheus-metrics \
 && chown app:app /app/data /tmp/prometheus-metrics
USER app
EXPOSE 8000
# /healthz with a Host header ALLOWED_HOSTS accepts, whatever it lists (no Django start-up).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "scripts/http_healthcheck.py"]
CMD ["sh", "-c", "exec gunicorn config.wsgi:application --config python:config.gunicorn --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-3} --threads 4 --access-logfile -"]
