from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.indexes import EqualityIndex
from registry.models.organizations import Organization

# Deepest franchise → series → episode → asset → … chain a catalog may build.
MAX_WORK_DEPTH = 8


class WorkQuerySet(models.QuerySet["Work"]):
    def active(self) -> WorkQuerySet:
        return self.filter(status=Work.Status.ACTIVE)


class Work(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")
        AUDIO = "audio", _("Audio")
        TEXT = "text", _("Text")
        CHARACTER = "character", _("Character")
        COLLECTION = "collection", _("Collection")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="works")
    external_ref = models.CharField(max_length=255)
    title = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    # The ancestors' ids, root first, as "/<hex>/<hex>/": lets a check find every grant on
    # a work's ancestors in one query instead of walking the tree.
    lineage = models.CharField(max_length=(32 + 1) * MAX_WORK_DEPTH + 1, default="/", editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # Bounded: a description is copied into every receipt and export that shows the work.
    description = models.TextField(max_length=20_000, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    creators = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    objects = WorkQuerySet.as_manager()

    class Meta:
        verbose_name = _("work")
        verbose_name_plural = _("works")
        constraints = [
            models.UniqueConstraint(fields=["owner", "external_ref"], name="work_external_ref_unique_per_owner"),
            models.CheckConstraint(
                condition=Q(kind__in=["image", "video", "audio", "text", "character", "collection", "other"]),
                name="work_kind_valid",
            ),
            models.CheckConstraint(
                condition=(Q(status="active") & Q(withdrawn_at__isnull=True))
                | (Q(status="withdrawn") & Q(withdrawn_at__isnull=False)),
                name="work_status_matches_withdrawn_at",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="work_not_own_parent"),
        ]
        indexes = [
            models.Index(fields=["owner", "status", "kind"]),
            models.Index(fields=["lineage"]),
            # What a near-match answer lists of each of its ~1,200 similar works, read from the
            # index alone on PostgreSQL (an index-only scan; on SQLite a plain index): 15 -> 9 ms a check.
            models.Index(fields=["id"], include=["title", "owner"], name="work_listing"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def ancestor_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(part) for part in self.lineage.strip("/").split("/") if part]


class ContentFile(models.Model):
    """A file (or just its hashes, from a manifest) that belongs to a work."""

    # Lookups by work use the (work, sha256) unique index, which leads with it (see WorkURL).
    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="files", db_index=False)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(null=True, blank=True)
    media_type = models.CharField(max_length=100, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="content/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("content file")
        verbose_name_plural = _("content files")
        constraints = [
            models.UniqueConstraint(fields=["work", "sha256"], name="content_file_unique_per_work"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="content_file_sha256_hex"),
        ]
        # Not db_index, which adds a second LIKE index on PostgreSQL: checks only ask for equality.
        indexes = [EqualityIndex(fields=["sha256"], name="contentfile_sha256")]

    def __str__(self) -> str:
        return self.sha256


class PerceptualHash(models.Model):
    """A 64-bit perceptual hash of (part of) a content file, indexed for near matches.

    The three band columns are the hash split 21/21/22 bits (see matching.fingerprints):
    two hashes within distance d share a band within d // 3 bits, so probing the bands
    finds every near match with indexed lookups.
    """

    class Source(models.TextChoices):
        IMAGE = "image", _("Whole image")
        MIRROR = "mirror", _("Mirrored image")
        CROP = "crop", _("Crop")
        FRAME = "frame", _("Video frame")

    content_file = models.ForeignKey(ContentFile, on_delete=models.CASCADE, related_name="perceptual_hashes")
    # Denormalised from content_file so a near-match query touches one table.
    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.IMAGE)
    value = models.BigIntegerField()
    band0 = models.IntegerField()
    band1 = models.IntegerField()
    band2 = models.IntegerField()

    class Meta:
        verbose_name = _("perceptual hash")
        verbose_name_plural = _("perceptual hashes")
        indexes = [
            models.Index(fields=["band0"], name="phash_band0"),
            models.Index(fields=["band1"], name="phash_band1"),
            models.Index(fields=["band2"], name="phash_band2"),
            models.Index(fields=["value"], name="phash_value"),
            # Confirming the near-match index's candidate rows and finding their works, from the index alone.
            models.Index(fields=["id"], include=["work"], name="phash_work"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["content_file", "source", "value"], name="phash_unique_per_file"),
        ]


class WorkURL(models.Model):
    # Lookups by work use the (work, url_hash) unique index, which leads with it: an index of its
    # own would only cost every registration (100,000 a bulk upload) a random write more.
    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="urls", db_index=False)
    # Normalised URL, or a normalised RFC 9309 pattern when is_pattern.
    url = models.CharField(max_length=2048)
    is_pattern = models.BooleanField(default=False)
    host = models.CharField(max_length=255)
    # sha256 of url: an indexable exact key whatever the URL's length.
    url_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("work URL")
        verbose_name_plural = _("work URLs")
        constraints = [models.UniqueConstraint(fields=["work", "url_hash"], name="work_url_unique_per_work")]
        indexes = [
            EqualityIndex(fields=["url_hash"], name="workurl_url_hash"),
            # Patterns are few; a check fetches the ones on the hosts it asks about. Partial, so a
            # popular host's millions of exact URLs are not scanned to find its handful of patterns.
            models.Index(fields=["host"], name="workurl_pattern_host", condition=Q(is_pattern=True)),
        ]

    def __str__(self) -> str:
        return self.url


class WorkIdentifier(models.Model):
    class Scheme(models.TextChoices):
        ISAN = "isan", _("ISAN")
        EIDR = "eidr", _("EIDR")
        ISBN = "isbn", _("ISBN")
        ISRC = "isrc", _("ISRC")
        ISWC = "iswc", _("ISWC")
        ISCC = "iscc", _("ISCC")
        DOI = "doi", _("DOI")

    # Lookups by work use the (work, scheme, value) unique index, which leads with it (see WorkURL).
    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="identifiers", db_index=False)
    scheme = models.CharField(max_length=10, choices=Scheme.choices)
    value = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("work identifier")
        verbose_name_plural = _("work identifiers")
        constraints = [
            models.UniqueConstraint(fields=["work", "scheme", "value"], name="work_identifier_unique_per_work"),
        ]
        indexes = [models.Index(fields=["value", "scheme"], name="workidentifier_value")]

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"
