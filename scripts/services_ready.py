"""Say plainly whether PostgreSQL and Redis are reachable, and how to start them if not."""

import os
import sys
from urllib.parse import urlsplit

import psycopg
import redis

database_url = os.environ["DATABASE_URL"]
redis_url = os.environ["REDIS_URL"]
problems = []

parts = urlsplit(database_url)
try:
    psycopg.connect(
        host=parts.hostname or None, port=parts.port or 5432, user=parts.username or None,
        password=parts.password or None, dbname="postgres", connect_timeout=3,
    ).close()
except psycopg.Error as exc:
    problems.append(
        f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432} ({str(exc).strip()}).\n"
        "  Start it (Debian: sudo pg_ctlcluster 15 main start; Docker: docker compose up -d postgres)\n"
        "  or point DATABASE_URL at one (the user must be allowed to create the test database)."
    )
try:
    redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
except redis.RedisError as exc:
    problems.append(
        f"Redis is not reachable at {redis_url} ({exc}).\n"
        "  Start it (redis-server --daemonize yes; Docker: docker compose up -d redis) or set REDIS_URL."
    )
if problems:
    print("Kyoka's tests run against real services, and some are missing:\n", file=sys.stderr)
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
