"""Shared fixtures. Data is set up through the services' cores (`do_*`), as the application's
commands and tasks do; `OPERATOR` names the tests in the audit trail and is refused by every
authorization check, so a test that means to exercise permissions uses a real member or key."""

from __future__ import annotations

import io
import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import translation

from registry.access import REVIEWER_GROUP, Actor
from registry.models import Membership, Organization
from registry.services.organizations import do_membership_add, do_organization_create, do_organization_verify
from tests.factories import make_image_bytes

OPERATOR = Actor.for_operator("tests")


@pytest.fixture(autouse=True)
def _no_language_left_behind():
    # A request in Japanese (LocaleMiddleware) leaves its language active on the test thread, in
    # every folder of the suite; the next test must not inherit it.
    yield
    translation.deactivate()


def require(condition: bool, reason: str) -> None:
    """Skip loudly on a developer's machine; fail under CI, where everything must be present."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI is missing something a test needs: {reason}")
    pytest.skip(f"SKIPPED — {reason}")


@pytest.fixture
def make_user(db):
    counter = iter(range(1, 10_000))

    def make(username: str | None = None, **extra):
        username = username or f"user{next(counter)}@example.com"
        return get_user_model().objects.create_user(username=username, email=username, password="pw-12345!", **extra)

    return make


@pytest.fixture
def reviewer(make_user):
    user = make_user("reviewer@example.com", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    return user


@pytest.fixture
def make_org(make_user):
    counter = iter(range(1, 10_000))

    def make(kind: str = Organization.Kind.RIGHTSHOLDER, *, verified: bool = True, name: str | None = None,
             owner=None) -> Organization:
        n = next(counter)
        owner = owner or make_user(f"owner{n}-{kind}@example.com")
        org = do_organization_create(acting=OPERATOR, name=name or f"{kind} {n}", kind=kind, owner=owner)
        if verified:
            org = do_organization_verify(acting=OPERATOR, organization=org)
        return org

    return make


@pytest.fixture
def studio(make_org):
    return make_org(Organization.Kind.RIGHTSHOLDER, name="Studio Aozora")


@pytest.fixture
def developer(make_org):
    return make_org(Organization.Kind.AI_DEVELOPER, name="Acme AI")


def owner_of(org: Organization):
    return Membership.objects.get(organization=org, role=Membership.Role.OWNER).user


@pytest.fixture
def member(make_user):
    """A user with `role` in `org`, as an Actor."""

    def make(org: Organization, role: str) -> Actor:
        user = make_user()
        do_membership_add(acting=OPERATOR, organization=org, user=user, role=role)
        return Actor.for_user(user)

    return make


@pytest.fixture
def png_file():
    def make(seed: int = 1, size: tuple[int, int] = (320, 240)) -> io.BytesIO:
        return io.BytesIO(make_image_bytes(seed, size=size))

    return make
