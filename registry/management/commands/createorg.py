from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registry.access import Actor
from registry.exceptions import KyokaError
from registry.models import Organization
from registry.services.accounts import email_canonical
from registry.services.organizations import do_organization_create, do_organization_verify


class Command(BaseCommand):
    help = "Create an organisation with an owner (created if needed); prints the organisation's slug."

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=Organization.Kind.values)
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--slug")
        parser.add_argument("--verified", action="store_true", help="mark it verified at once")

    def handle(self, *args, kind, name, owner_email, slug, verified, **options):
        User = get_user_model()
        try:
            # Usernames are the normal form of the address: the one login and invitations compare.
            owner_email = email_canonical(owner_email)
        except KyokaError as exc:
            raise CommandError(exc.message) from exc
        owner, created = User.objects.get_or_create(
            username=owner_email, defaults={"email": owner_email}
        )
        if created:
            owner.set_unusable_password()
            owner.save()
            self.stderr.write(
                f"Created user {owner_email}; set a password with: manage.py changepassword {owner_email}"
            )
        # An operator at the console: the cores act without an authorization check, and the audit
        # trail names the command.
        actor = Actor.for_operator("manage.py createorg")
        try:
            organization = do_organization_create(acting=actor, name=name, kind=kind, owner=owner, slug=slug)
            if verified:
                do_organization_verify(acting=actor, organization=organization)
        except KyokaError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(organization.slug)
