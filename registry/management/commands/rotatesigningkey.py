from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from registry.receipts import public_jwks, rotate_signing_key


class Command(BaseCommand):
    help = (
        "Generate a new receipt signing key and make it current. Older keys stay published in the "
        "JWKS, so receipts signed with them still verify; delete a key's file to retire it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            kid = rotate_signing_key()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        published = len(public_jwks()["keys"])
        # The kid alone on the first line, so scripts can capture it with `| head -1`.
        self.stdout.write(kid)
        self.stdout.write(f"published keys: {published}")
