"""Write the local settings file ./scripts/run and manage.py read (var/.env unless KYOKA_ENV_FILE).

Only when it is missing: a generated SECRET_KEY (so sessions survive restarts and no key is shared
between checkouts) and DEBUG=true (the local settings). Mode 0600; var/ is git-ignored. Prints
the file's path.
"""

import os
import secrets
import sys
from pathlib import Path

path = Path(os.environ.get("KYOKA_ENV_FILE") or Path(__file__).resolve().parent.parent / "var" / ".env")
path.parent.mkdir(parents=True, exist_ok=True)
try:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
except FileExistsError:
    pass
else:
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# Local settings for this checkout, written by ./scripts/run. Not for production.\n")
        handle.write(f"SECRET_KEY={secrets.token_urlsafe(50)}\nDEBUG=true\n")
sys.stdout.write(f"{path}\n")
