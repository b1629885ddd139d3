"""A perceptual likeness between two organisations' works raises a flag for reviewers, never a
dispute; one flag per pair, closest distance kept; none for images too plain to tell apart."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageDraw

from registry.access import Actor
from registry.exceptions import InvalidTransition, PermissionDenied
from registry.matching.fingerprints import hamming_distance, image_phash
from registry.matching.plainness import PLAIN_ENTROPY_BITS, image_entropy, image_is_plain
from registry.models import AuditEvent, Dispute, DisputeWork, SimilarityFlag
from registry.services.similarity_flags import similarity_flag_dismiss, similarity_flag_escalate
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR, owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db


def flat_image(seed: int, shapes: int = 4) -> Image.Image:
    """A cel-like picture: one background colour and a few solid shapes."""
    rng = random.Random(seed)
    image = Image.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(shapes):
        x, y = rng.randrange(320), rng.randrange(240)
        box = (x, y, x + rng.randrange(20, 160), y + rng.randrange(20, 120))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def register(org, data: bytes, ref: str):
    work = do_work_register(acting=OPERATOR, organization=org, external_ref=ref, title=f"Cel {ref}", kind="image")
    extension = "jpg" if data.startswith(b"\xff\xd8") else "png"
    do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(data), filename=f"{ref}.{extension}")
    return work


def test_flat_colour_images_are_plain_and_gradient_scenes_are_not():
    flats = [flat_image(seed, shapes) for seed in range(40) for shapes in (2, 4, 8)]
    scenes = [Image.open(io.BytesIO(make_image_bytes(seed))) for seed in range(40)]
    assert max(image_entropy(i) for i in flats) < PLAIN_ENTROPY_BITS < min(image_entropy(i) for i in scenes)
    assert all(image_is_plain(i) for i in flats) and not any(image_is_plain(i) for i in scenes)
    assert image_is_plain(Image.new("RGB", (64, 64), (200, 30, 90)))  # a single colour
    assert image_is_plain(Image.new("RGBA", (64, 64), (0, 0, 0, 0)))  # nothing at all, over white


def test_two_distinct_flat_images_within_the_distance_raise_no_flag(studio, rival):
    first, second = flat_image(118), flat_image(125)
    assert hamming_distance(image_phash(first), image_phash(second)) <= 8  # near by hash, different pictures
    register(studio, png(first), "FLAT-1")
    register(rival, png(second), "FLAT-2")
    assert not SimilarityFlag.objects.exists()
    assert not Dispute.objects.exists()


def stamped(seed: int, corner: int) -> bytes:
    """A detailed scene with a white patch in one corner: the bigger the patch, the farther the hash."""
    image = Image.open(io.BytesIO(make_image_bytes(seed))).convert("RGB")
    ImageDraw.Draw(image).rectangle((0, 0, corner, corner * 3 // 4), fill=(255, 255, 255))
    return png(image)


def test_a_near_copy_of_a_detailed_image_raises_one_flag_with_the_closest_distance(studio, rival):
    original = register(studio, make_image_bytes(3), "A-1")
    copy = register(rival, stamped(3, 20), "R-1")
    flag = SimilarityFlag.objects.get()
    assert (flag.work_a_id, flag.work_b_id) == tuple(sorted((original.pk, copy.pk)))
    assert flag.distance == 4
    # A closer file of the same work: still one flag for the pair, now at the closer distance.
    do_content_file_add(acting=OPERATOR, work=copy, fileobj=io.BytesIO(stamped(3, 10)), filename="closer.png")
    flag.refresh_from_db()
    assert SimilarityFlag.objects.count() == 1
    assert flag.distance == 2
    assert not Dispute.objects.exists() and not DisputeWork.objects.filter(freezes=True).exists()


def test_ones_own_near_copies_raise_nothing(studio):
    register(studio, make_image_bytes(3), "A-1")
    register(studio, make_image_bytes(3, fmt="JPEG", quality=40), "A-2")
    assert not SimilarityFlag.objects.exists()


def test_a_reviewer_dismisses_a_flag_once_and_parties_cannot(studio, rival, reviewer):
    register(studio, make_image_bytes(3), "A-1")
    register(rival, make_image_bytes(3, fmt="JPEG", quality=40), "R-1")
    flag = SimilarityFlag.objects.get()
    with pytest.raises(PermissionDenied):
        similarity_flag_dismiss(actor=Actor.for_user(owner_of(studio)), flag=flag)
    similarity_flag_dismiss(actor=Actor.for_user(reviewer), flag=flag)
    flag.refresh_from_db()
    assert (flag.status, flag.reviewed_by) == (SimilarityFlag.Status.DISMISSED, reviewer)
    assert AuditEvent.objects.filter(action="similarity_flag.dismiss", object_id=str(flag.pk)).exists()
    with pytest.raises(InvalidTransition):
        similarity_flag_dismiss(actor=Actor.for_user(reviewer), flag=flag)


def test_a_reviewer_opens_a_dispute_from_a_flag_and_it_waits_in_triage(studio, rival, reviewer):
    original = register(studio, make_image_bytes(3), "A-1")
    copy = register(rival, make_image_bytes(3, fmt="JPEG", quality=40), "R-1")
    flag = SimilarityFlag.objects.get()
    dispute = similarity_flag_escalate(actor=Actor.for_user(reviewer), flag=flag, statement="Looks traced.")
    assert (dispute.claimant, dispute.respondent, dispute.statement) == (studio, rival, "Looks traced.")
    links = {link.work_id: link.freezes for link in DisputeWork.objects.filter(dispute=dispute)}
    assert links == {original.pk: False, copy.pk: False}
    flag.refresh_from_db()
    assert flag.status == SimilarityFlag.Status.ESCALATED
