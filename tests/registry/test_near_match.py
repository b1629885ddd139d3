"""Near match has exact recall: the indexed band search finds exactly what brute force finds.

Run against PostgreSQL (the default database) and SQLite (the embedded default).
"""

from __future__ import annotations

import random

import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.matching.fingerprints import hamming_distance, phash_bands
from registry.models import ContentFile, Organization, PerceptualHash, Work
from registry.selectors.matching import works_by_phash

STORED = 400


def signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def seed_hashes(using: str, rng: random.Random) -> dict[int, object]:
    """Random hashes, plus clusters of near neighbours so small distances actually occur."""
    owner = get_user_model().objects.db_manager(using).create_user(username=f"nm-{using}")
    org = Organization.objects.using(using).create(slug=f"nm-{using}", name="Near", kind="rightsholder")
    del owner
    centres = [rng.getrandbits(64) for _ in range(20)]
    values = []
    for n in range(STORED):
        if n % 2:
            value = rng.choice(centres)
            for bit in rng.sample(range(64), rng.randrange(14)):
                value ^= 1 << bit
        else:
            value = rng.getrandbits(64)
        values.append(signed(value))
    works = Work.objects.using(using).bulk_create(
        [Work(owner=org, external_ref=f"N{n}", title=f"N{n}", kind="image") for n in range(len(values))]
    )
    files = ContentFile.objects.using(using).bulk_create(
        [ContentFile(work=work, sha256=f"{n:064x}") for n, work in enumerate(works)]
    )
    PerceptualHash.objects.using(using).bulk_create([
        PerceptualHash(content_file=content, work=work, value=value, **dict(zip(("band0", "band1", "band2"),
                                                                                phash_bands(value), strict=True)))
        for value, work, content in zip(values, works, files, strict=True)
    ])
    stored = [(value, work.pk) for value, work in zip(values, works, strict=True)]
    return {"stored": stored, "centres": centres}


@pytest.fixture(scope="module")
def corpus(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        data = {alias: seed_hashes(alias, random.Random(7)) for alias in ("default", "embedded")}
    yield data
    with django_db_blocker.unblock():
        for alias in data:
            PerceptualHash.objects.using(alias).all().delete()
            ContentFile.objects.using(alias).all().delete()
            Work.objects.using(alias).all().delete()
            Organization.objects.using(alias).all().delete()
            get_user_model().objects.using(alias).all().delete()


def brute_force(stored: list[tuple[int, object]], query: int, max_distance: int) -> dict:
    return {work: hamming_distance(v, query) for v, work in stored if hamming_distance(v, query) <= max_distance}


@pytest.mark.parametrize("alias", ["default", "embedded"])
@pytest.mark.django_db(databases=["default", "embedded"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          print_blob=False)
@given(data=st.data())
def test_band_search_equals_brute_force(corpus, alias, data):
    seeded = corpus[alias]
    centre = data.draw(st.sampled_from(seeded["centres"]))
    flips = data.draw(st.lists(st.integers(0, 63), max_size=10, unique=True))
    query = centre
    for bit in flips:
        query ^= 1 << bit
    query = signed(query)
    max_distance = data.draw(st.integers(0, 12))
    found = works_by_phash([(query, max_distance)], using=alias)[0]
    assert found == brute_force(seeded["stored"], query, max_distance)


@pytest.mark.parametrize("alias", ["default", "embedded"])
@pytest.mark.django_db(databases=["default", "embedded"])
def test_a_batch_answers_each_query_separately(corpus, alias):
    seeded = corpus[alias]
    queries = [(signed(c), d) for c in seeded["centres"][:5] for d in (0, 6, 12)]
    answers = works_by_phash(queries, using=alias)
    for (query, max_distance), found in zip(queries, answers, strict=True):
        assert found == brute_force(seeded["stored"], query, max_distance)
