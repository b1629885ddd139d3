from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage

from registry.exceptions import Conflict, ValidationFailed
from registry.models import ContentFile, PerceptualHash, Work, WorkIdentifier, WorkURL
from registry.services.works import (
    do_content_file_add,
    do_work_register,
    do_work_update,
    do_work_withdraw,
)
from tests.conftest import OPERATOR

pytestmark = pytest.mark.django_db


def register(org, ref, parent=None, **kwargs):
    return do_work_register(acting=OPERATOR, organization=org, external_ref=ref, title=ref, kind="video",
                         parent=parent, **kwargs)


def test_registration_normalises_urls_and_identifiers(studio):
    work = register(
        studio, "EP-1",
        urls=["HTTPS://Aozora.Example:443/a/./b/../cel%2d1.png#frag", "https://aozora.example/sora/*"],
        identifiers=["ISBN:4-04-102622-9", "isbn:978-4-04-102622-9"],
    )
    urls = {(u.url, u.is_pattern, u.host) for u in work.urls.all()}
    assert ("https://aozora.example/a/cel-1.png", False, "aozora.example") in urls
    assert any(is_pattern for _, is_pattern, _ in urls)
    # ISBN-10 and ISBN-13 of the same book are one identifier.
    assert list(work.identifiers.values_list("scheme", "value")) == [("isbn", "9784041026229")]


def test_invalid_references_refuse_the_whole_registration(studio):
    with pytest.raises(ValidationFailed) as info:
        register(studio, "EP-1", urls=["ftp://x.example/a", "https://ok.example/"],
                 identifiers=["isbn:978-4-04-102622-3", "isan:nonsense"])
    assert set(info.value.fields) == {"urls", "identifiers"}
    assert not Work.objects.exists() and not WorkURL.objects.exists() and not WorkIdentifier.objects.exists()


def test_external_ref_is_unique_per_organisation_only(studio, make_org):
    register(studio, "EP-1")
    with pytest.raises(Conflict):
        register(studio, "EP-1")
    assert register(make_org(), "EP-1").external_ref == "EP-1"


def test_hierarchy_lineage_follows_moves(studio, make_org):
    franchise = register(studio, "F")
    series = register(studio, "S", parent=franchise)
    episode = register(studio, "E", parent=series)
    asset = register(studio, "A", parent=episode)
    assert asset.ancestor_ids == [franchise.pk, series.pk, episode.pk]
    other_franchise = register(studio, "F2")
    do_work_update(acting=OPERATOR, work=series, parent=other_franchise)
    asset.refresh_from_db()
    assert asset.ancestor_ids == [other_franchise.pk, series.pk, episode.pk]
    with pytest.raises(ValidationFailed):
        do_work_update(acting=OPERATOR, work=other_franchise, parent=asset)  # a cycle
    with pytest.raises(ValidationFailed):
        register(make_org(), "X", parent=franchise)  # someone else's parent


def test_withdraw_is_recorded(studio):
    work = do_work_withdraw(acting=OPERATOR, work=register(studio, "EP-1"), reason="sold")
    assert work.status == "withdrawn" and work.withdrawn_at is not None


def test_image_file_is_fingerprinted_and_stored(studio, png_file):
    work = register(studio, "CEL-1")
    stored = do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(7), filename="cel.png")
    assert stored.media_type == "image/png" and (stored.width, stored.height) == (320, 240)
    assert default_storage.exists(stored.file.name)
    phash = PerceptualHash.objects.get(content_file=stored)
    assert phash.work_id == work.pk and phash.band0 >= 0
    again = do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(7), filename="same.png")
    assert again.pk == stored.pk and ContentFile.objects.count() == 1


def test_decompression_bomb_is_refused_and_nothing_stored(studio):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")
    work = register(studio, "BOMB")
    with pytest.raises(ValidationFailed, match=r"(?i)pixels|bomb|large"):
        do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(buffer.getvalue()), filename="bomb.png")
    assert not ContentFile.objects.exists() and not PerceptualHash.objects.exists()


def test_file_whose_name_lies_about_its_type_is_refused(studio):
    work = register(studio, "LIE")
    with pytest.raises(ValidationFailed):
        do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(b"just some text, honestly\n"),
                         filename="cel.jpg")
    assert not ContentFile.objects.exists()


def test_a_withdrawn_work_takes_no_new_files(studio, png_file):
    work = do_work_withdraw(acting=OPERATOR, work=register(studio, "GONE"))
    with pytest.raises(ValidationFailed, match="withdrawn"):
        do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(3), filename="late.png")
    assert not ContentFile.objects.exists()
