from django.core.management.base import BaseCommand, CommandError

from registry.access import Actor
from registry.exceptions import KyokaError
from registry.models import Organization
from registry.services.api_keys import do_api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organisation and print it once (only its hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--scopes", help="comma-separated; default depends on the organisation's kind")

    def handle(self, *args, org, name, scopes, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()] if scopes else None
        try:
            _, raw_key = do_api_key_create(
                acting=Actor.for_operator("manage.py createapikey"), organization=organization, name=name,
                scopes=scope_list,
            )
        except KyokaError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
        self.stdout.write(raw_key)
