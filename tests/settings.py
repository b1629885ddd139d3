"""Test settings: the real PostgreSQL and Redis at their usual local addresses.

Override with DATABASE_URL / REDIS_URL. The test database is test_<name>.
"""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kyoka")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="kyoka-media-"))
os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="kyoka-static-"))
os.environ.setdefault("KYOKA_SIGNING_KEY_DIR", tempfile.mkdtemp(prefix="kyoka-keys-"))
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("EMAIL_URL", "consolemail://")

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The embedded default's database, for tests that must hold on SQLite too (near-match recall).
DATABASES["embedded"] = {  # noqa: F405
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.path.join(tempfile.mkdtemp(prefix="kyoka-sqlite-"), "embedded.sqlite3"),
    "TEST": {"NAME": os.path.join(tempfile.mkdtemp(prefix="kyoka-sqlite-"), "test-embedded.sqlite3")},
}
