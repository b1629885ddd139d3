"""Demo data: two studios (one verified), an AI developer, ~50 works with images, grants of several shapes.

Idempotent: works, files and grants are created once; running it again only issues fresh
demo API keys (a key's secret is shown once and never stored).
"""

import io
import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw
from stdnum import ean

from registry.access import REVIEWER_GROUP, Actor
from registry.decisions.run import check_run
from registry.models import ApiKey, Check, Grant, Organization, Work
from registry.services.api_keys import do_api_key_create, do_api_key_revoke
from registry.services.grants import do_grant_issue, do_grant_revoke
from registry.services.hosts import do_host_confirm
from registry.services.organizations import do_membership_add, do_organization_create, organization_verify
from registry.services.verification import verification_request_submit
from registry.services.works import do_content_file_add, do_work_register

DEMO_PASSWORD = "kyoka-demo-2026"  # noqa: S105 — printed for the local demo on purpose
OPERATOR = Actor.for_operator("manage.py seeddemo")


def demo_image(seed: int) -> bytes:
    """A small, distinct picture: perceptual hashes of different seeds are far apart."""
    rng = random.Random(seed)
    image = Image.new("RGB", (256, 256), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(200), rng.randrange(200)
        box = (x0, y0, x0 + rng.randrange(20, 120), y0 + rng.randrange(20, 120))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def demo_isbn(n: int) -> str:
    body = f"9784{n:08d}"
    return f"isbn:{body}{ean.calc_check_digit(body)}"


class Command(BaseCommand):
    help = "Create (or top up) the demo data and print demo logins and fresh API keys."

    def handle(self, *args, **options):
        User = get_user_model()

        def user(username: str, **extra) -> object:
            account, created = User.objects.get_or_create(username=username, defaults={"email": username, **extra})
            if created:
                account.set_password(DEMO_PASSWORD)
                account.save()
            return account

        admin = user("admin@kyoka.localhost", is_staff=True, is_superuser=True)
        reviewer = user("reviewer@kyoka.localhost", is_staff=True)
        reviewer.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
        studio_owner = user("owner@aozora.example")
        studio_viewer = user("viewer@aozora.example")
        kumo_owner = user("owner@kumo.example")
        dev_owner = user("owner@acme-ai.example")

        with transaction.atomic():
            aozora = self._org("studio-aozora", "Studio Aozora", Organization.Kind.RIGHTSHOLDER, studio_owner)
            kumo = self._org("kumo-pictures", "Kumo Pictures", Organization.Kind.RIGHTSHOLDER, kumo_owner)
            acme = self._org("acme-ai", "Acme AI", Organization.Kind.AI_DEVELOPER, dev_owner)
            do_membership_add(acting=OPERATOR, organization=aozora, user=studio_viewer, role="viewer")
            reviewer_actor = Actor.for_user(admin)
            organization_verify(actor=reviewer_actor, organization=aozora)
            organization_verify(actor=reviewer_actor, organization=acme)
            # The studios' own web hosts, proven, so their URL registrations have standing.
            do_host_confirm(acting=reviewer_actor, organization=aozora, host="aozora.example", note="Demo data")
            do_host_confirm(acting=reviewer_actor, organization=kumo, host="kumo.example", note="Demo data")
        works = self._catalog(aozora, kumo)
        self._grants(aozora, kumo, acme, works)
        self._living(aozora, kumo, acme, works, dev_owner=dev_owner, kumo_owner=kumo_owner)
        keys = self._keys(aozora, acme)

        self.stdout.write(self.style.SUCCESS("Kyoka demo data is ready."))
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD}):")
        for login, what in [
            (admin.username, "administrator (Django admin)"),
            (reviewer.username, "reviewer"),
            (studio_owner.username, "Studio Aozora owner (verified studio)"),
            (studio_viewer.username, "Studio Aozora viewer"),
            (kumo_owner.username, "Kumo Pictures owner (unverified studio)"),
            (dev_owner.username, "Acme AI owner (verified AI developer)"),
        ]:
            self.stdout.write(f"  {login:28} {what}")
        self.stdout.write("API keys (new each run; shown once):")
        for label, raw in keys:
            self.stdout.write(f"  {label:28} {raw}")

    def _org(self, slug, name, kind, owner) -> Organization:
        existing = Organization.objects.filter(slug=slug).first()
        return existing or do_organization_create(acting=OPERATOR, name=name, kind=kind, owner=owner, slug=slug)

    def _catalog(self, aozora: Organization, kumo: Organization) -> dict[str, Work]:
        works: dict[str, Work] = {w.external_ref: w for w in Work.objects.filter(owner__in=[aozora, kumo])}

        def register(org, ref, title, kind, parent=None, **refs) -> Work:
            if ref not in works:
                works[ref] = do_work_register(
                    acting=OPERATOR, organization=org, external_ref=ref, title=title, kind=kind, parent=parent, **refs
                )
            return works[ref]

        franchise = register(aozora, "AOZ-F1", "Sora no Tabi", "collection",
                             urls=["https://aozora.example/sora/*"], identifiers=[demo_isbn(1)])
        for s in range(1, 3):
            series = register(aozora, f"AOZ-F1-S{s}", f"Sora no Tabi — Season {s}", "collection", parent=franchise)
            for e in range(1, 4):
                episode = register(aozora, f"AOZ-F1-S{s}E{e}", f"Season {s}, Episode {e}", "video", parent=series,
                                   identifiers=[demo_isbn(100 + s * 10 + e)])
                for c in range(1, 6):
                    register(aozora, f"AOZ-F1-S{s}E{e}-C{c}", f"S{s}E{e} key frame {c}", "image", parent=episode,
                             urls=[f"https://cdn.aozora.example/sora/s{s}/e{e}/cel-{c:04d}.png"])
        for i in range(1, 11):
            register(aozora, f"AOZ-ART-{i}", f"Aozora character sheet {i}", "character",
                     urls=[f"https://aozora.example/art/{i}.png"])
        for i in range(1, 6):
            register(kumo, f"KUMO-{i}", f"Kumo background {i}", "image", urls=[f"https://kumo.example/bg/{i}.jpg"])

        for n, work in enumerate(sorted(works.values(), key=lambda w: w.external_ref)):
            if work.kind in ("image", "character") and not work.files.exists():
                do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(demo_image(n)),
                                 filename=f"{work.external_ref}.png")
        return works

    def _grants(self, aozora, kumo, acme, works) -> None:
        if Grant.objects.filter(grantor__in=[aozora, kumo]).exists():
            return
        now = timezone.now()
        issue = lambda **kw: do_grant_issue(acting=OPERATOR, **kw)  # noqa: E731
        issue(grantor=aozora, scope="work", work=works["AOZ-F1-S1"], licensee=acme, purposes=["train-genai"],
              territories=["JP"], valid_until=now + timedelta(days=365),
              attribution="© Studio Aozora", licence_url="https://aozora.example/licence")
        issue(grantor=aozora, scope="catalog", licensee=None, purposes=["search"])
        issue(grantor=aozora, scope="work", work=works["AOZ-ART-1"], licensee=acme, purposes=["tdm"],
              contexts=["research"], compensation="JPY 10 per image per year")
        expired = issue(grantor=aozora, scope="work", work=works["AOZ-ART-2"], licensee=acme, purposes=["all"],
                        valid_from=now - timedelta(days=60), valid_until=now - timedelta(days=1))
        revoked = issue(grantor=aozora, scope="work", work=works["AOZ-ART-3"], licensee=acme, purposes=["all"])
        do_grant_revoke(acting=OPERATOR, grant=revoked, reason="Demo: licence ended early")
        issue(grantor=kumo, scope="catalog", licensee=acme, purposes=["all"])  # unverified grantor: counts for nothing
        del expired

    def _living(self, aozora, kumo, acme, works, *, dev_owner, kumo_owner) -> None:
        """Checks (the activity chart has bars), one open dispute, one pending verification: no page is empty."""
        if not Check.objects.filter(organization=acme).exists():
            items = [{"url": f"https://cdn.aozora.example/sora/s1/e{e}/cel-{c:04d}.png"}
                     for e in range(1, 4) for c in range(1, 6)]
            items += [{"url": "https://aozora.example/art/2.png"}, {"url": "https://kumo.example/bg/1.jpg"},
                      {"url": "https://elsewhere.example/unregistered.png"}]
            for purpose in ("train-genai", "search", "tdm"):
                check_run(actor=Actor.for_user(dev_owner), organization=acme, purpose=purpose, territory="JP",
                          items=items)
        if "KUMO-COPY" not in works:
            # Kumo registers Aozora's franchise ISBN as its own: Kyoka opens an ownership dispute by itself.
            works["KUMO-COPY"] = do_work_register(
                acting=OPERATOR, organization=kumo, external_ref="KUMO-COPY", title="Sora no Tabi (Kumo's copy)",
                kind="collection", identifiers=[demo_isbn(1)])
        if not kumo.verification_requests.exists():
            verification_request_submit(
                actor=Actor.for_user(kumo_owner), organization=kumo, legal_name="Kumo Pictures KK", country="JP",
                registration_number="5835678256246", website="https://kumo.example",
                contact_email="legal@kumo.example")

    def _keys(self, aozora, acme) -> list[tuple[str, str]]:
        for old in ApiKey.objects.filter(name__startswith="demo ", revoked_at__isnull=True):
            do_api_key_revoke(acting=OPERATOR, api_key=old)
        _, dev_key = do_api_key_create(acting=OPERATOR, organization=acme, name="demo checks")
        _, studio_key = do_api_key_create(acting=OPERATOR, organization=aozora, name="demo studio")
        return [("Acme AI (checks)", dev_key), ("Studio Aozora (all scopes)", studio_key)]
