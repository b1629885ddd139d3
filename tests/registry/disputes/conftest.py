"""Fixtures for disputes: two studios that register the same image, and the people involved."""

from __future__ import annotations

import io

import pytest

from registry.access import Actor
from registry.models import Membership, Organization
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.factories import make_image_bytes
from tests.registry.api.conftest import api_client, check, client_for, key_for, make_work  # noqa: F401


@pytest.fixture
def rival(make_org) -> Organization:
    """A second rightsholder: the one who registers the studio's art as its own."""
    return make_org(Organization.Kind.RIGHTSHOLDER, name="Rival Pictures")


@pytest.fixture
def register_image():
    """Register a work holding one image for `org`; returns the work."""
    counter = iter(range(1, 100_000))

    def register(org: Organization, *, seed: int = 1, fmt: str = "PNG", quality: int = 90, **refs):
        n = next(counter)
        work = do_work_register(
            acting=OPERATOR, organization=org, external_ref=f"{org.slug}-{n}", title=f"Cel {n}", kind="image", **refs
        )
        data = make_image_bytes(seed, fmt=fmt, quality=quality)
        do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(data), filename=f"cel{n}.{fmt.lower()}")
        return work

    return register


@pytest.fixture
def reviewer_actor(reviewer) -> Actor:
    return Actor.for_user(reviewer)


def owner_actor(org: Organization) -> Actor:
    return Actor.for_user(owner_of(org))


def manager_of(org: Organization, member) -> Actor:
    return member(org, Membership.Role.MANAGER)
