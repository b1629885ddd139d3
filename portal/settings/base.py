"""Kyoka's settings shared by every setting module, driven by the environment (django-environ).

With no environment at all Kyoka runs embedded: SQLite under var/, the local-memory
cache, and Celery on kombu's filesystem transport (a worker process, no broker server).
Set DATABASE_URL and REDIS_URL for PostgreSQL and Redis.

The environment wins over files: `var/.env` (written by ./scripts/run: a generated SECRET_KEY
and DEBUG for local use, git-ignored) and then `.env` only fill in what the environment lacks.
This is the one module that reads the environment; everything else reads `django.conf.settings`.
`local`, `production` and `test` add what differs (`portal.settings` picks local or production
by DEBUG).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# Written by ./scripts/run (scripts/write_local_env.py); KYOKA_ENV_FILE names another one.
LOCAL_ENV_FILE = Path(env.str("KYOKA_ENV_FILE", default=str(VAR_DIR / ".env")))
for _env_file in (LOCAL_ENV_FILE, BASE_DIR / ".env"):
    if _env_file.is_file():
        environ.Env.read_env(_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "registry",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ClientAddressMiddleware",
    "registry.api.parsers.RequestBodyLimitMiddleware",
    "registry.api.throttling.RateLimitHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "portal.middleware.TimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.EmailConfirmationRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.portal",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kyoka.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: a web process and a worker share the file, so wait on locks
    # instead of failing, and let readers run beside a writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# PostgreSQL prepares the check path's fixed statements (registry/db_statements.py) after this
# many runs on a connection, so it stops planning them on every check (~1 ms each). Only those
# statements are affected (the ORM binds on the client). Set it to 0 behind a pooler in
# transaction mode that cannot keep prepared statements (PgBouncer before 1.21).
KYOKA_DB_PREPARE_THRESHOLD = env.int("KYOKA_DB_PREPARE_THRESHOLD", default=2)
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3" and KYOKA_DB_PREPARE_THRESHOLD > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = KYOKA_DB_PREPARE_THRESHOLD
if env.str("DATABASE_REPLICA_URL", default=""):
    # A PostgreSQL read replica for the checks' decisions (registry/db_router.py): used only
    # once it has replayed everything committed before the check; writes stay on the primary.
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"].setdefault("CONN_MAX_AGE", DATABASES["default"]["CONN_MAX_AGE"])
    DATABASES["replica"].setdefault("OPTIONS", {}).update(
        {k: v for k, v in DATABASES["default"].get("OPTIONS", {}).items() if k == "prepare_threshold"}
    )
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["registry.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The near-match covering indexes (registry/models/works.py) carry INCLUDE columns on PostgreSQL;
# on SQLite, the embedded default, they are plain indexes by design, which Django would warn about
# on every start (models.W040).
SILENCED_SYSTEM_CHECKS = ["models.W040"]

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL, "KEY_PREFIX": "kyoka"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}
# Uploads larger than this are streamed to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=16 * 1024 * 1024)
# Per-route body caps, checked before reading: registry/api/parsers.py. Bulk uploads:
KYOKA_MAX_MANIFEST_BYTES = env.int("KYOKA_MAX_MANIFEST_BYTES", default=256 * 1024 * 1024)
KYOKA_MAX_ARCHIVE_BYTES = env.int("KYOKA_MAX_ARCHIVE_BYTES", default=4 * 1024**3)
# Stored media (files, manifests and archives of running uploads) per organisation.
KYOKA_STORAGE_QUOTA_BYTES = env.int("KYOKA_STORAGE_QUOTA_BYTES", default=20 * 1024**3)

_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kyoka <no-reply@kyoka.localhost>")
# Where links in mail point (a worker has no request to take the host from).
KYOKA_SITE_URL = env.str("KYOKA_SITE_URL", default="http://127.0.0.1:8000")
# Mail is rendered and sent by Celery tasks; inline runs those tasks in the calling process after
# the commit (the test settings do, so tests read the outbox; nothing else should).
KYOKA_NOTIFICATIONS_INLINE = env.bool("KYOKA_NOTIFICATIONS_INLINE", default=False)

# Celery: Redis when configured; otherwise kombu's filesystem transport, so the embedded
# default runs background work in a worker process without any broker server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = Path(env.str("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than any task's hard time limit, so a task still running is never handed
    # to a second worker; a task whose worker died comes back after this long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=30 * 60),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Bulk uploads by size on queues of their own (registry/uploads/fairness.py). Declared here so a
# worker started without -Q consumes them all; docker-compose gives small uploads their own worker.
CELERY_TASK_QUEUES = {"celery": {}, "uploads": {}, "uploads-small": {}}
CELERY_TASK_ROUTES = ("registry.uploads.fairness.route_task",)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["registry.api.throttling.OrganizationQuotaThrottle"],
    "DEFAULT_PARSER_CLASSES": [
        "registry.api.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": None,
}
# Quotas (registry/quotas.py): units of work per organisation per minute (a check item is one
# unit; phash items, long URLs and files more), counted in Redis. Without Redis the API answers
# 503 (fail closed) unless KYOKA_QUOTA_FAIL_OPEN serves requests uncounted.
KYOKA_QUOTA_REDIS_URL = env.str("KYOKA_QUOTA_REDIS_URL", default=REDIS_URL)
KYOKA_QUOTA_UNITS_PER_MINUTE = env.int("KYOKA_QUOTA_UNITS_PER_MINUTE", default=600_000)
KYOKA_QUOTA_ANONYMOUS_UNITS_PER_MINUTE = env.int("KYOKA_QUOTA_ANONYMOUS_UNITS_PER_MINUTE", default=600)
KYOKA_QUOTA_FAIL_OPEN = env.bool("KYOKA_QUOTA_FAIL_OPEN", default=False)
KYOKA_QUOTA_KEY_PREFIX = env.str("KYOKA_QUOTA_KEY_PREFIX", default="kyoka:quota:")
KYOKA_MAX_API_KEYS_PER_ORGANIZATION = env.int("KYOKA_MAX_API_KEYS_PER_ORGANIZATION", default=20)

SPECTACULAR_SETTINGS = {
    "TITLE": "Kyoka API",
    "DESCRIPTION": "Opt-in consent registry for AI training. No record is not permission.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: no CDN, and a strict CSP stays possible.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "WorkKindEnum": "registry.models.works.Work.Kind",
        "WorkStatusEnum": "registry.models.works.Work.Status",
        "DisputeKindEnum": "registry.models.disputes.Dispute.Kind",
        "DisputeStatusEnum": "registry.models.disputes.Dispute.Status",
        "PermissionRequestStatusEnum": "registry.models.access.PermissionRequest.Status",
        "OrganizationKindEnum": "registry.models.organizations.Organization.Kind",
        "UploadStatusEnum": "registry.models.uploads.BulkUpload.Status",
    },
}

# Receipt signing keys (Ed25519, JWK files). Kept on disk, outside the database.
# The shared near-match index files (registry/selectors/phash_index.py); empty: the temp directory.
KYOKA_INDEX_DIR = env.str("KYOKA_INDEX_DIR", default="")
KYOKA_SIGNING_KEY_DIR = env.path("KYOKA_SIGNING_KEY_DIR", default=VAR_DIR / "keys")
KYOKA_REGISTRY_ID = env.str("KYOKA_REGISTRY_ID", default="kyoka")

# A receipt signing key given in the environment instead of a file (see registry/receipts.py).
KYOKA_SIGNING_KEY = env.str("KYOKA_SIGNING_KEY", default="")

# The proxies in front of Kyoka (addresses or networks). Only a request arriving from one of them
# may name the client with X-Forwarded-For (portal.middleware.ClientAddressMiddleware) or say it
# came over HTTPS; gunicorn's --forwarded-allow-ips is given the same list.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Django believes X-Forwarded-Proto from anyone once this is set, so it is set only on request,
# for a proxy that overwrites the header. Behind gunicorn, --forwarded-allow-ips already does it.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", default=False) else None
)

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:landing"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SAMESITE = "Lax"

# Argon2 first: new passwords and every login with an older hash end up as Argon2.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# Failed logins (portal and /admin/login/) within KYOKA_LOGIN_LOCKOUT_SECONDS before logins refuse:
# per (normalised username, client address); per username from anywhere, much higher, so that
# nobody can lock a user out everywhere cheaply; per client address over all usernames; and a
# ceiling for the whole site.
KYOKA_LOGIN_FAILURE_LIMIT = env.int("KYOKA_LOGIN_FAILURE_LIMIT", default=5)
KYOKA_LOGIN_USER_FAILURE_LIMIT = env.int("KYOKA_LOGIN_USER_FAILURE_LIMIT", default=100)
KYOKA_LOGIN_ADDRESS_FAILURE_LIMIT = env.int("KYOKA_LOGIN_ADDRESS_FAILURE_LIMIT", default=50)
KYOKA_LOGIN_GLOBAL_FAILURE_LIMIT = env.int("KYOKA_LOGIN_GLOBAL_FAILURE_LIMIT", default=5000)
KYOKA_LOGIN_LOCKOUT_SECONDS = env.int("KYOKA_LOGIN_LOCKOUT_SECONDS", default=15 * 60)
# How long an invitation and an address-confirmation link stay valid.
KYOKA_INVITATION_DAYS = env.int("KYOKA_INVITATION_DAYS", default=7)
KYOKA_EMAIL_CONFIRMATION_DAYS = env.int("KYOKA_EMAIL_CONFIRMATION_DAYS", default=3)

# /metrics (Prometheus): answered for a request bearing this token, or from one of these
# addresses or networks; for nobody when both are empty.
KYOKA_METRICS_TOKEN = env.str("KYOKA_METRICS_TOKEN", default="")
KYOKA_METRICS_ALLOWED_ADDRESSES = env.list("KYOKA_METRICS_ALLOWED_ADDRESSES", default=[])
# Celery queues whose depth /metrics reports.
KYOKA_METRICS_QUEUES = env.list("KYOKA_METRICS_QUEUES", default=["celery"])
# prometheus_client adds up every process's counters when this directory is set (it reads the
# variable itself; Kyoka only needs to know that it is set).
KYOKA_METRICS_MULTIPROCESS = bool(env.str("PROMETHEUS_MULTIPROC_DIR", default=""))

# Content-Security-Policy (django-csp): only our own scripts and styles, no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")  # "json" in production (portal/settings/production.py)


def logging_config(log_format: str) -> dict:
    """Every record passes the masking filter (no secrets, keys or full e-mail addresses)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask": {"()": "portal.logs.MaskSecretsFilter"}},
        "formatters": {
            "json": {"()": "portal.logs.JsonFormatter"},
            "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "filters": ["mask"], "formatter": log_format},
        },
        "root": {"handlers": ["console"], "level": LOG_LEVEL},
    }


LOGGING = logging_config(LOG_FORMAT)
