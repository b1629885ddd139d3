"""Production: a real secret, HTTPS only, JSON logs.

Secure by default. `COOKIES_SECURE=false` and `SECURE_SSL_REDIRECT=false` exist for one case only:
`docker compose up` on plain http://localhost (KYOKA_PLAIN_HTTP=true in docker-compose.yml).
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
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
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

COOKIES_SECURE = env.bool("COOKIES_SECURE", default=True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = COOKIES_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

LOGGING = logging_config(env.str("LOG_FORMAT", default="json"))
