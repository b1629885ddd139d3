"""A live Kyoka for the client's tests: pytest-django's live server on the real PostgreSQL.

Data is committed (transactional db) so the server thread, and `kyoka` run as a subprocess,
see it. `run_kyoka` runs the installed command the way a trainer would.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.models import Organization
from registry.services.api_keys import do_api_key_create
from registry.services.grants import do_grant_issue
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR
from tests.factories import make_image_bytes

CLIENT_SOURCE = Path(__file__).resolve().parents[2] / "clients" / "python"


@dataclass
class Registry:
    url: str
    key: str
    studio: Organization
    developer: Organization

    def work(self, *, urls=(), identifiers=(), image_seed: int | None = None, org=None):
        count = getattr(self, "_count", 0) + 1
        self._count = count
        work = do_work_register(acting=OPERATOR, organization=org or self.studio, external_ref=f"C-{count}",
                                title=f"Client work {count}", kind="image", urls=list(urls),
                                identifiers=list(identifiers))
        if image_seed is not None:
            do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(make_image_bytes(image_seed)),
                                filename=f"{image_seed}.png")
        return work

    def grant(self, work=None, **terms):
        terms.setdefault("purposes", ["train-ai"])
        return do_grant_issue(acting=OPERATOR, grantor=self.studio, scope="work" if work else "catalog",
                              work=work, licensee=self.developer, **terms)


@pytest.fixture
def kyoka_server(live_server, transactional_db, settings, studio, developer):
    settings.ALLOWED_HOSTS = ["*"]
    settings.SECURE_SSL_REDIRECT = False
    _, raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    return Registry(url=live_server.url, key=raw, studio=studio, developer=developer)


@pytest.fixture
def run_kyoka(tmp_path):
    def run(*args: str, url: str, key: str = "", stdin: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        environment = {**os.environ, "KYOKA_URL": url, "KYOKA_API_KEY": key,
                       "KYOKA_SNAPSHOT_DIR": str(tmp_path / "snapshots"), **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CLIENT_SOURCE),
                                                                   environment.get("PYTHONPATH")]))
        return subprocess.run([sys.executable, "-m", "kyoka", *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=environment, cwd=tmp_path)

    return run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
