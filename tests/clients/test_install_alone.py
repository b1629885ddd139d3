"""`pip install ./clients/python` works alone: a fresh virtual environment, none of the server's packages."""

from __future__ import annotations

import subprocess
import sys
import venv

import pytest

from tests.clients.conftest import CLIENT_SOURCE

pytestmark = pytest.mark.slow


def test_the_client_installs_and_runs_in_a_fresh_virtual_environment(tmp_path):
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(environment)
    python = environment / "bin" / "python"
    # Built from a copy, so the build leaves nothing in the repository.
    source = tmp_path / "source"
    subprocess.run(["cp", "-r", str(CLIENT_SOURCE), str(source)], check=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    imported = subprocess.run([str(python), "-c", "import kyoka, httpx, joserfc; print(kyoka.__version__)"],
                              capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0 and imported.stdout.strip() == "0.1.0", imported.stderr
    helped = subprocess.run([str(environment / "bin" / "kyoka"), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "check" in helped.stdout and "filter" in helped.stdout
    for server_package in ("django", "rest_framework", "psycopg", "celery", "PIL", "registry"):
        absent = subprocess.run([str(python), "-c", f"import {server_package}"], capture_output=True, timeout=60,
                                cwd=tmp_path)
        assert absent.returncode != 0, f"{server_package} should not be installed with the client"
    assert sys.prefix not in subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"],
                                            capture_output=True, text=True).stdout
