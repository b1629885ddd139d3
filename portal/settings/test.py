"""Test settings: production's rules on the real PostgreSQL and Redis at their usual local addresses.

Override with DATABASE_URL / REDIS_URL. The test database is test_<name>. Only what makes tests
fast or observable differs: a quick password hasher, mail kept in memory, plain http.
"""

import atexit
import os
import shutil
import tempfile
import time


def _fresh_folder(name: str, prefix: str) -> None:
    """A folder of this run's own for `name`, unless the environment names one: a server or worker a
    test starts inherits its parent's. The process that made it removes it when it exits."""
    if name not in os.environ:
        os.environ[name] = tempfile.mkdtemp(prefix=prefix)
        atexit.register(shutil.rmtree, os.environ[name], True)


os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kyoka")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "kyoka-test-secret-key-" + "t3st" * 10)
_fresh_folder("MEDIA_ROOT", "kyoka-media-")
_fresh_folder("STATIC_ROOT", "kyoka-static-")
_fresh_folder("KYOKA_SIGNING_KEY_DIR", "kyoka-keys-")
# The shared near-match index files: fresh per run, since each run recreates its test database.
_fresh_folder("KYOKA_INDEX_DIR", "kyoka-index-")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("EMAIL_URL", "consolemail://")
os.environ.setdefault("LOG_FORMAT", "text")

from portal.settings.production import *  # noqa: F403, E402 (the environment above comes first)
from portal.settings.production import DATABASES, STORAGES  # noqa: E402

# Argon2 is production's; tests/test_accounts proves it there. Here speed matters.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if os.environ["EMAIL_URL"] == "consolemail://":
    # In memory, for mail.outbox; a worker started by a test may be given another EMAIL_URL.
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Mail tasks run in the test process after commit, so tests read mail.outbox (tests/registry/services/
# test_notifications.py proves the queued path against the real broker).
KYOKA_NOTIFICATIONS_INLINE = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

# The embedded default's database, for tests that must hold on SQLite too (near-match recall).
_fresh_folder("KYOKA_TEST_SQLITE_DIR", "kyoka-sqlite-")
DATABASES["embedded"] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.path.join(os.environ["KYOKA_TEST_SQLITE_DIR"], "embedded.sqlite3"),
    "TEST": {"NAME": os.path.join(os.environ["KYOKA_TEST_SQLITE_DIR"], "test-embedded.sqlite3")},
}

# A second alias on the same test database, for the read-replica router's tests
# (tests/registry/test_db_router.py installs the router; without it nothing reads from here).
DATABASES.setdefault("replica", {**DATABASES["default"], "TEST": {"MIRROR": "default"}})

# The whole suite's anonymous requests come from 127.0.0.1; tests of quotas set their own limits.
KYOKA_QUOTA_ANONYMOUS_UNITS_PER_MINUTE = 1_000_000
# Each run's organisations start again at id 1: counters of an earlier run must not count.
KYOKA_QUOTA_KEY_PREFIX = f"kyoka:quota:test-{os.getpid()}-{time.time_ns()}:"
