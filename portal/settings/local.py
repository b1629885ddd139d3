"""Local development and the embedded default (./scripts/run): DEBUG, plain http, loopback hosts.

The secret key comes from `var/.env`, which ./scripts/run writes once with a generated value, so
sessions survive restarts; a fixed development key is the fallback for a bare `manage.py`.
"""

from portal.settings.base import *  # noqa: F403
from portal.settings.base import STORAGES, env

DEBUG = True
SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# Plain http on localhost: cookies without Secure, no redirect, no HSTS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
