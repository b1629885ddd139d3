from django.core.management.base import BaseCommand, CommandError

from registry.access import Actor
from registry.exceptions import KyokaError
from registry.models import Organization
from registry.services.hosts import do_host_confirm


class Command(BaseCommand):
    help = (
        "A reviewer's confirmation that an organisation controls a web host (and its subdomains); "
        "creates the claim if the organisation has none. Prints the host as stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="the organisation's slug")
        parser.add_argument("--host", required=True, help="a host name, e.g. cdn.example.com")
        parser.add_argument("--note", default="", help="why, for the audit trail (e.g. how it was checked)")

    def handle(self, *args, org, host, note, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with the slug {org!r}.")
        # An operator at the console: the core confirms without an authorization check, and the
        # audit trail names the command.
        actor = Actor.for_operator("manage.py verifyhost")
        try:
            claim = do_host_confirm(acting=actor, organization=organization, host=host, note=note)
        except KyokaError as exc:
            details = " ".join(" ".join(messages) for messages in exc.fields.values())
            raise CommandError(details or exc.message) from exc
        self.stdout.write(claim.host)
