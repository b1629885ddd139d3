"""Production: a real secret, HTTPS only, JSON logs.

Secure by default. `KYOKA_PLAIN_HTTP=true` exists for one case only: trying `docker compose up` on
plain http://localhost; it turns off Secure cookies, the HTTPS redirect and HSTS (each can also be
set on its own: COOKIES_SECURE, SECURE_SSL_REDIRECT, SECURE_HSTS_SECONDS).
"""

from django.core.exceptions import ImproperlyConfigured

from portal.settings.base import *  # noqa: F403
from portal.settings.base import env, logging_config

# Keys that have shipped in Kyoka's own files or are typical placeholders: never a real secret.
KNOWN_SECRET_KEYS = frozenset({
    "change-me-in-production", "insecure-development-key", "test-secret-key-not-for-production",
    "build", "secret", "changeme", "change-me", "django-insecure", "",
})
MINIMUM_SECRET_KEY_LENGTH = 50


def require_strong_secret_key(value: str | None) -> str:
    """Refuse to start on a missing, known or short key: sessions, reset and invitation links hang on it."""
    if not value:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (for local use: python scripts/write_local_env.py, "
            "which ./scripts/run does, writes var/.env with a generated key and DEBUG=true)"
        )
    if value.strip().lower() in KNOWN_SECRET_KEYS or value.startswith("django-insecure-"):
        raise ImproperlyConfigured("SECRET_KEY is a published placeholder; generate a real one")
    if len(value) < MINIMUM_SECRET_KEY_LENGTH or len(set(value)) < 5:
        raise ImproperlyConfigured(
            f"SECRET_KEY is too short or too plain: use at least {MINIMUM_SECRET_KEY_LENGTH} random characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    return value


DEBUG = False
SECRET_KEY = require_strong_secret_key(env.str("SECRET_KEY", default=""))
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

PLAIN_HTTP = env.bool("KYOKA_PLAIN_HTTP", default=False)
COOKIES_SECURE = env.bool("COOKIES_SECURE", default=not PLAIN_HTTP)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = COOKIES_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not PLAIN_HTTP)
# Probes come from inside (the container's healthcheck, a load balancer) over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if PLAIN_HTTP else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

LOGGING = logging_config(env.str("LOG_FORMAT", default="json"))
