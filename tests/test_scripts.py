"""The README's test command says plainly when PostgreSQL or Redis is missing, and how to start them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_unreachable_services_are_named_with_how_to_start_them():
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/kyoka", "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run([sys.executable, "scripts/services_ready.py"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "PostgreSQL is not reachable at 127.0.0.1:1" in result.stderr and "pg_ctlcluster" in result.stderr
    assert "Redis is not reachable" in result.stderr and "redis-server" in result.stderr


def test_reachable_services_pass_silently():
    result = subprocess.run([sys.executable, "scripts/services_ready.py"], cwd=ROOT, env=dict(os.environ),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
