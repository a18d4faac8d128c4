"""Settings for the retention platform.

With no environment variables at all the project runs embedded: SQLite (WAL) in var/, Celery on kombu's
filesystem transport in var/celery/, email printed to the console. Production switches each piece by one variable:
DATABASE_URL, CELERY_BROKER_URL, EMAIL_URL-style SMTP settings, SECRET_KEY.
"""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import database_from_url, env_bool, env_int, env_list, env_str, sqlite_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", True)
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
    "members",
    "community",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "members.middleware.MemberLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
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
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
# Paid lesson media and attachments: never under a public URL; sent only by members.learning.views after a check.
PRIVATE_MEDIA_ROOT = Path(env_str("PRIVATE_MEDIA_ROOT", str(VAR_DIR / "private-media")))
MEDIA_URL = "/media/"
ARTIFACTS_DIR = Path(env_str("ARTIFACTS_DIR", str(VAR_DIR / "artifacts")))

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env_str("REDIS_URL")}
    if env_str("REDIS_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "retention"}
}

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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
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
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
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
    # Behind N reverse proxies, throttles must read the client IP from X-Forwarded-For; otherwise every client
    # shares the proxy's address and one IP budget.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0) or None,
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
RENEWAL_GRACE_DAYS = env_int("RENEWAL_GRACE_DAYS", 7)
RENEW_LINK_MAX_AGE_DAYS = env_int("RENEW_LINK_MAX_AGE_DAYS", 14)
EVENT_MAX_CLOCK_SKEW_SECONDS = env_int("EVENT_MAX_CLOCK_SKEW_SECONDS", 300)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
