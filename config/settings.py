"""Settings for the retention platform.

With no environment variables at all the project runs embedded: SQLite (WAL) in var/, Celery on kombu's
filesystem transport in var/celery/, email printed to the console. Production switches each piece by one variable:
DATABASE_URL, CELERY_BROKER_URL, EMAIL_URL-style SMTP settings, SECRET_KEY.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import database_from_url, env_bool, env_int, env_list, env_str, sqlite_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Off unless DJANGO_DEBUG=1: `make run` sets it; a production process that forgets a variable fails closed.
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
# Shared secret of the email provider's bounce/complaint webhook (/hooks/email/<provider>/): the HMAC key of the
# generic format, the Basic-auth password of Postmark's. Unset: the webhook refuses every call.
EMAIL_WEBHOOK_SECRET = env_str("EMAIL_WEBHOOK_SECRET", "")

INSTALLED_APPS = [
    # modeltranslation patches the admin, so it comes before it.
    "modeltranslation",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "template_partials",
    "axes",
    "members",
    "community",
    "analytics",
]

MIDDLEWARE = [
    "config.logging.RequestIdMiddleware",
    "config.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # django-csp, with the policy of a plain response built once per process (config.content_security).
    "config.content_security.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # NUL / lone surrogates in the path, query string or form fields → 400 before any view or query (issue 13.10).
    "config.middleware.RejectUnusableTextMiddleware",
    # A signed-in learner's cached page for this very session, before the session, user, CSRF, locale and the rest
    # (members.pagecache.front, issue 19); the middlewares above still run on its hits.
    "members.pagecache.front.FrontPageCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "members.middleware.MemberLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A write request that did not fail makes the cached learner pages stale (members.pagecache, issue 19).
    "members.pagecache.BumpOnWriteMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "community.context_processors.notifications",
            ],
        },
    }
]

_database_url = env_str("DATABASE_URL")
DATABASES = {
    "default": database_from_url(_database_url, base_dir=BASE_DIR)
    if _database_url
    else sqlite_database(VAR_DIR / "db.sqlite3")
}
_test_db_name = env_str("TEST_DB_NAME")
if _test_db_name and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["TEST"] = {"NAME": _test_db_name}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The paid-orders index carries INCLUDE columns for PostgreSQL's index-only scans (the staff reports); SQLite builds it
# as a plain index, which is what we want there, so its warning about the ignored columns is noise.
SILENCED_SYSTEM_CHECKS = ["models.W040"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []

AUTH_USER_MODEL = "members.User"
# django-axes first: it refuses a locked-out (IP, username) before the password is checked, on the HTML login, the
# admin login and the API token endpoint alike (all go through django.contrib.auth.authenticate).
AUTHENTICATION_BACKENDS = ["config.auth_backends.LoginLimitBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "members:home"
LOGOUT_REDIRECT_URL = "members:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Content in the member's language (docs/ARCHITECTURE.md "Translated content"): one column per language
# (title_en, title_zh_hans) on the same row, so translated pages keep their query counts; a missing translation
# falls back to English.
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_LANGUAGES = ("en", "zh-hans")
MODELTRANSLATION_FALLBACK_LANGUAGES = ("en",)
# Course(title=...) written while Chinese is active (an import, a test after a Chinese request) still fills the
# English column, so the English page and the fallback never show an empty title.
MODELTRANSLATION_AUTO_POPULATE = "required"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
# The platform's own calendar for the staff reports: which month and day an order falls in (docs/METRICS.md).
# Storage and comparisons stay UTC; only report windows (days, months) are cut at this zone's midnights.
REPORTING_TIME_ZONE = env_str("REPORTING_TIME_ZONE", "Asia/Shanghai")
try:
    import zoneinfo as _zoneinfo

    _zoneinfo.ZoneInfo(REPORTING_TIME_ZONE)
except (ValueError, _zoneinfo.ZoneInfoNotFoundError) as _exc:
    raise ImproperlyConfigured(f"REPORTING_TIME_ZONE={REPORTING_TIME_ZONE!r} is not an IANA time zone.") from _exc
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cache forever) and gzip/brotli copies, served by whitenoise under gunicorn.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Paid lesson media and attachments: never under a public URL; sent only by members.learning.views after a check.
PRIVATE_MEDIA_ROOT = Path(env_str("PRIVATE_MEDIA_ROOT", str(VAR_DIR / "private-media")))
MEDIA_URL = "/media/"
ARTIFACTS_DIR = Path(env_str("ARTIFACTS_DIR", str(VAR_DIR / "artifacts")))

# One cache every process shares (throttles, report figures): Redis when REDIS_URL is set, else a database table
# (created by `migrate`, see members.apps). Never per-process LocMem outside tests: N workers would give an attacker
# N throttle budgets.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env_str("REDIS_URL")}
    if env_str("REDIS_URL")
    else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"},
    # Rendered learner pages (members.pagecache): per process, keyed under a version kept in "default" above, so a
    # write shows at once in every worker while a hit costs one shared-cache read instead of a render.
    "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pages",
              "TIMEOUT": env_int("PAGE_CACHE_SECONDS", 300), "OPTIONS": {"MAX_ENTRIES": 2000}},
}
# The pages version, each member's version and each session's marker (members.pagecache): every process of the
# site must see the same, at the cost of no database query on a page-cache hit. Redis with REDIS_URL; on SQLite (one
# host by construction) a folder of small files; otherwise (PostgreSQL without Redis, perhaps several hosts) the
# database cache above, one query per hit.
CACHES["page_state"] = (
    {**CACHES["default"]} if env_str("REDIS_URL") or not DATABASES["default"]["ENGINE"].endswith("sqlite3")
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "page-state"),
          "OPTIONS": {"MAX_ENTRIES": 1_000_000}}
)
# The API's general throttles (config.api_throttles): in Redis with REDIS_URL; else in each gunicorn worker's memory,
# each worker allowing 1/API_THROTTLE_PROCESSES of every rate, so N workers never give N budgets. Without Redis
# on several hosts, each host has its own budget: set REDIS_URL there.
CACHES["throttle"] = (
    {**CACHES["default"]} if env_str("REDIS_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle",
          "OPTIONS": {"MAX_ENTRIES": 50000}}
)
API_THROTTLE_PROCESSES = 1 if env_str("REDIS_URL") else env_int("API_THROTTLE_PROCESSES", env_int("WEB_CONCURRENCY", 3))
# Sessions: with Redis, read from the cache and written through to the database (durable across a Redis restart);
# embedded, from the database (a database-cache read would be a query all the same).
SESSION_ENGINE = ("django.contrib.sessions.backends.cached_db" if env_str("REDIS_URL")
                  else "django.contrib.sessions.backends.db")
# Write requests that never change a learner page, so they do not make the cached pages stale: event ingestion, the
# language switch (the language is in the key), logging in and out (the member is in the key; the last-login save
# is ignored too, see members.pagecache).
PAGE_CACHE_WRITE_EXEMPT = ["/api/v1/events/", "/i18n/", "/accounts/login/", "/accounts/logout/"]

# Email: console in development; SMTP when EMAIL_HOST is set; any backend via EMAIL_BACKEND.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Learning Club <hello@learning.example>")

# Celery. Embedded default: kombu's filesystem transport, so worker and beat run with no broker server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _celery_dir = VAR_DIR / "celery"
    for _sub in ("out", "processed", "control"):
        (_celery_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "out"),
        "data_folder_out": str(_celery_dir / "out"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
        # The filesystem transport polls; 0.2 s keeps an email burst from draining at one message a second.
        "polling_interval": 0.2,
    }
else:
    if CELERY_BROKER_URL.split("://", 1)[0] not in {"redis", "rediss", "amqp", "amqps", "memory", "sqs"}:
        raise ImproperlyConfigured(f"CELERY_BROKER_URL={CELERY_BROKER_URL!r} has an unknown transport.")
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"

# How many reverse proxies (load balancer, nginx) append to X-Forwarded-For in front of gunicorn. 0 (the default):
# the peer address is the client, and X-Forwarded-For / X-Forwarded-Proto are ignored. See docs/SECURITY.md.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", env_int("API_NUM_PROXIES", 0))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # DRF's TokenAuthentication with the token's user kept per process while the pages versions hold (issue 19).
        "config.api_auth.CachedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # DRF's anonymous and per-user throttles and the per-IP one, counting in the "throttle" cache (see CACHES).
    "DEFAULT_THROTTLE_CLASSES": [
        "config.api_throttles.CountedAnonRateThrottle",
        "config.api_throttles.CountedUserRateThrottle",
        "config.api_throttles.IPRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "600/minute"),
        "user": env_str("API_THROTTLE_USER", "3000/minute"),
        # Event ingestion: one batch carries up to 500 events, so a client needs few requests a minute.
        "events": env_str("API_THROTTLE_EVENTS", "120/minute"),
        # Per client IP whoever is signed in (config.api_throttles); token creation checks passwords, so it is low.
        "ip": env_str("API_THROTTLE_IP", "6000/minute"),
        "login": env_str("API_THROTTLE_LOGIN", "10/minute"),
    },
    "EXCEPTION_HANDLER": "config.api_errors.api_exception_handler",
    # JSON nested deeper than config.parsers.MAX_JSON_DEPTH → 400; an error echoing a lone surrogate still renders.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "config.renderers.SurrogateSafeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # The client IP: REMOTE_ADDR unless TRUSTED_PROXY_COUNT reverse proxies sit in front, then the address the
    # outermost trusted proxy saw (X-Forwarded-For counted from the right). Never None: DRF would then key on the
    # whole client-supplied X-Forwarded-For header, and rotating it would give a fresh budget per request.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Retention platform API",
    "DESCRIPTION": "Catalogue, membership, community, event ingestion and staff analytics for a knowledge-paid platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per shared choice set (billing period appears as `period` in inputs and `billing_period` in outputs).
    "ENUM_NAME_OVERRIDES": {
        "BillingPeriodEnum": "members.models.BillingPeriod",
        "CancellationReasonEnum": "members.models.Subscription.CancellationReason",
        "SubscriptionStatusEnum": "members.models.Subscription.Status",
        "OrderStatusEnum": "members.models.Order.Status",
        "CampaignStatusEnum": "analytics.models.Campaign.Status",
        "JobRunStatusEnum": "analytics.models.JobRun.Status",
        "DiscountTypeEnum": "members.models.Coupon.DiscountType",
        "CampaignDiscountTypeEnum": [("percent", "Percent"), ("fixed", "Amount")],
    },
}

# Product settings.
PAYMENT_PROVIDER = env_str("PAYMENT_PROVIDER", "members.commerce.payments.LocalPaymentProvider")
# Real providers (members/commerce/providers, docs/PAYMENTS.md): each is offered only when its keys are set.
# PEM keys may be given inline (newlines as \n) in the variable.
def _pem(name: str) -> str:
    return env_str(name).replace("\\n", "\n")


PAYMENT_PROVIDERS_CONFIG = {
    "alipay": {
        "app_id": env_str("ALIPAY_APP_ID"), "app_private_key": _pem("ALIPAY_APP_PRIVATE_KEY"),
        "alipay_public_key": _pem("ALIPAY_PUBLIC_KEY"), "sandbox": env_bool("ALIPAY_SANDBOX", False),
        "notify_url": f"{SITE_URL.rstrip('/')}/payments/webhooks/alipay/",
        # Agreement debit (商家扣款) contracted with Alipay: renewals are charged off-session, not by pay link.
        "agreement_debit": env_bool("ALIPAY_AGREEMENT_DEBIT", False),
    } if env_str("ALIPAY_APP_ID") else None,
    "wechatpay": {
        "mchid": env_str("WECHATPAY_MCHID"), "appid": env_str("WECHATPAY_APPID"),
        "private_key": _pem("WECHATPAY_PRIVATE_KEY"), "cert_serial_no": env_str("WECHATPAY_CERT_SERIAL_NO"),
        "apiv3_key": env_str("WECHATPAY_APIV3_KEY"), "platform_public_key": _pem("WECHATPAY_PLATFORM_PUBLIC_KEY"),
        "platform_public_key_id": env_str("WECHATPAY_PLATFORM_PUBLIC_KEY_ID"),
        "notify_url": f"{SITE_URL.rstrip('/')}/payments/webhooks/wechatpay/",
    } if env_str("WECHATPAY_MCHID") else None,
    "stripe": {
        "secret_key": env_str("STRIPE_SECRET_KEY"), "webhook_secret": env_str("STRIPE_WEBHOOK_SECRET"),
    } if env_str("STRIPE_SECRET_KEY") else None,
}
# Outgoing webhooks (members/webhooks.py): receivers and the HMAC secret they verify with.
OUTGOING_WEBHOOK_URLS = env_list("OUTGOING_WEBHOOK_URLS", [])
OUTGOING_WEBHOOK_SECRET = env_str("OUTGOING_WEBHOOK_SECRET")
if OUTGOING_WEBHOOK_URLS and len(OUTGOING_WEBHOOK_SECRET) < 16:
    raise ImproperlyConfigured("OUTGOING_WEBHOOK_SECRET (16+ characters) must be set with OUTGOING_WEBHOOK_URLS.")
RENEWAL_GRACE_DAYS = env_int("RENEWAL_GRACE_DAYS", 7)
# Nightly pipeline (analytics/scoring): members per scoring/recommendation chunk task, and the member count above
# which the propensity model trains, and the engagement weights are learned, on a deterministic id sample (0: never
# sample). docs/SCALING.md has the sizing.
ANALYTICS_CHUNK_SIZE = env_int("ANALYTICS_CHUNK_SIZE", 50000)
# The worker processes that share a night's chunks (the worker's --concurrency; with several workers, their sum):
# more than one chunk come in a multiple of it, so the night's last round of chunks keeps every process busy.
ANALYTICS_NIGHT_PROCESSES = env_int("ANALYTICS_NIGHT_PROCESSES", env_int("CELERY_CONCURRENCY", 2))
ANALYTICS_TRAIN_SAMPLE_MEMBERS = env_int("ANALYTICS_TRAIN_SAMPLE_MEMBERS", 25000)
# Training fits its candidate models this many at a time, in threads of the task (each fit single-threaded and
# deterministic: the same models as one after another), and on PostgreSQL builds its windows' feature matrices this
# many at a time, each thread on its own database connections (the same matrices). 1: one after another.
ANALYTICS_FIT_THREADS = env_int("ANALYTICS_FIT_THREADS", 2)
# On PostgreSQL a feature matrix's event reads run on a second database connection, in a thread, while the orders
# and enrolments are read (analytics.ml.datasets.alongside); off: every read in turn on the task's connection.
ANALYTICS_READS_ALONGSIDE = env_bool("ANALYTICS_READS_ALONGSIDE", True)
# In a night fanned out over worker processes, the recommendation side reads the orders and enrolments and stores
# them for the serial part, which waits at most this many seconds for them before reading them itself.
ANALYTICS_SHARED_READS_WAIT = env_int("ANALYTICS_SHARED_READS_WAIT", 60)
# Days a night reuses the learned engagement weights and the selected recommendation blend before learning them
# again: the weekly cadence of the propensity model's retraining (0: learn both every night).
ANALYTICS_RELEARN_DAYS = env_int("ANALYTICS_RELEARN_DAYS", 7)
# An import that writes orders or events to a platform no propensity model serves yet sends beat's weekly learning
# at once (the model with the engagement weights; the recommendation blend), so the first night only scores.
ANALYTICS_LEARN_AFTER_IMPORT = env_bool("ANALYTICS_LEARN_AFTER_IMPORT", True)
# An import that writes reads each large members/orders/events file ahead, in a forked process, while this one
# writes (analytics.ingest.read_ahead; docs/IMPORT.md). 0: read every file in the importing process.
IMPORT_READ_AHEAD = env_bool("IMPORT_READ_AHEAD", True)
# Days of recommendation runs whose rows are kept (older superseded runs keep their metrics, not their rows).
RECOMMENDATION_ROWS_KEEP_DAYS = env_int("RECOMMENDATION_ROWS_KEEP_DAYS", 14)
# The "recommended for you" row counts an impression once per member, card set (run, rank, course) and this many
# seconds: rendering the same cards again to the same member inside the window records nothing (0: every render
# records, as before session 7). docs/METRICS.md, "Online funnel".
RECOMMENDATION_IMPRESSION_WINDOW_SECONDS = env_int("RECOMMENDATION_IMPRESSION_WINDOW_SECONDS", 1800)
# Importing a platform's history (docs/IMPORT.md): drop a loaded table's secondary indexes and rebuild them before
# committing when the file holds at least IMPORT_BULK_LOAD_MIN_ROWS rows and at least as many as the table (auto),
# for every loaded table (always), or never. `import_platform_data --bulk-load` overrides it per run.
IMPORT_BULK_LOAD = env_str("IMPORT_BULK_LOAD", "auto")
if IMPORT_BULK_LOAD not in {"auto", "always", "never"}:
    raise ImproperlyConfigured(f"IMPORT_BULK_LOAD={IMPORT_BULK_LOAD!r}: use auto, always or never.")
IMPORT_BULK_LOAD_MIN_ROWS = env_int("IMPORT_BULK_LOAD_MIN_ROWS", 50000)
RENEW_LINK_MAX_AGE_DAYS = env_int("RENEW_LINK_MAX_AGE_DAYS", 14)
EVENT_MAX_CLOCK_SKEW_SECONDS = env_int("EVENT_MAX_CLOCK_SKEW_SECONDS", 300)

# Logs: plain lines by default; one JSON object per line (with the request id) when LOG_FORMAT=json.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json.")
ADMINS = [("Admin", a) for a in env_list("ADMINS", [])]
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
SENTRY_DSN = env_str("SENTRY_DSN")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
        # Without Sentry, server errors go to ADMINS by email (only when DEBUG is off and ADMINS is set).
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR",
                        "filters": ["require_debug_false"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"handlers": [] if SENTRY_DSN else ["mail_admins"], "level": "ERROR", "propagate": True},
    },
}
LOGGING["filters"]["require_debug_false"] = {"()": "django.utils.log.RequireDebugFalse"}
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN, integrations=[DjangoIntegration(), CeleryIntegration()],
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=float(env_str("SENTRY_TRACES_SAMPLE_RATE", "0") or 0), send_default_pii=False,
    )

# Login limits (django-axes): failures are counted in the database, so every gunicorn worker and host sees the same
# count. A lock holds per IP and per account name; it lifts after AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if TRUSTED_PROXY_COUNT else ("REMOTE_ADDR",)

# Content-Security-Policy (django-csp). Scripts only from our own origin (htmx is vendored; no inline handlers);
# inline style attributes are allowed (the templates use a few), nothing is framed, forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        # ReDoc (/api/redoc/, served from the sidecar) parses the schema in a Web Worker it creates from a blob: URL.
        "worker-src": ["'self'", "blob:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# Transport security, each from the environment; the defaults are the production values when DEBUG is off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The load balancer's X-Forwarded-Proto is believed only when a trusted proxy is declared.
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Liveness/readiness probes come over plain HTTP from the orchestrator.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$", r"^api/v1/ready/$", r"^health/$", r"^ready/$"]
