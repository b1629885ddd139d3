# Shared by scripts/run and scripts/test: find Python 3.11+, make .venv, install Kyoka into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

find_python() {
  for candidate in "${PYTHON:-}" python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Kyoka needs Python 3.11 or 3.12 (set PYTHON=/path/to/python)." >&2
  return 1
}

ensure_venv() {
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  local stamp=".venv/.kyoka-installed-$extras"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing Kyoka and its dependencies into .venv ..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
    touch "$stamp"
  fi
  # The trainer's client (clients/python) is a package of its own; the tests drive it as installed.
  local client_stamp=".venv/.kyoka-client-installed-$extras"
  if [ ! -f "$client_stamp" ] || [ clients/python/pyproject.toml -nt "$client_stamp" ]; then
    local client_extras="progress,parquet,images"
    [ "$extras" = "[test]" ] && client_extras="$client_extras,integrations"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "./clients/python[${client_extras}]"
    touch "$client_stamp"
  fi
}
