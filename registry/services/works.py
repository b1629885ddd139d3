"""Registering works and their content references."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize
from registry.exceptions import Conflict, ValidationFailed
from registry.matching.fingerprints import FileRejected, fingerprint_file, phash_band_columns
from registry.models import ContentFile, Membership, Organization, PerceptualHash, Work, WorkIdentifier, WorkURL
from registry.models.works import MAX_WORK_DEPTH
from registry.services.audit import audit_append
from registry.services.conflicts import conflicts_detect, conflicts_detect_references
from registry.services.references import UrlReference, parse_references, references_replace

EDITABLE_FIELDS = ("title", "kind", "description", "year", "creators")
# Enum .values rebuilds its list on every call; a bulk upload asks once per row.
WORK_KINDS = frozenset(Work.Kind.values)


def work_lineage_under(parent: Work | None) -> str:
    if parent is None:
        return "/"
    return f"{parent.lineage}{parent.pk.hex}/"


def work_parent_validate(*, organization: Organization, parent: Work | None, work: Work | None = None) -> None:
    if parent is None:
        return
    if parent.owner_id != organization.pk:
        raise ValidationFailed(
            _("A work's parent must belong to the same organisation."), fields={"parent": [_("Not yours.")]}
        )
    if work is not None and (parent.pk == work.pk or work.pk.hex in parent.lineage):
        raise ValidationFailed(
            _("A work cannot be placed under itself."),
            fields={"parent": [_("Would make a cycle.")]},
        )
    if parent.lineage.count("/") >= MAX_WORK_DEPTH:
        raise ValidationFailed(
            _("Works nest at most %(depth)d deep.") % {"depth": MAX_WORK_DEPTH},
            fields={"parent": [_("Hierarchy too deep.")]},
        )


def work_fields_validate(fields: dict[str, Any]) -> None:
    """The field rules every way in applies (API, portal, bulk upload); checks the keys given."""
    errors: dict[str, list[str]] = {}
    for name in ("external_ref", "title"):
        if name in fields and not str(fields[name] or "").strip():
            errors[name] = [_("This field is required.")]
    for name in ("external_ref", "title", "creators", "description"):
        limit = Work._meta.get_field(name).max_length
        if len(str(fields.get(name) or "").strip()) > limit:
            errors[name] = [_("At most %(limit)d characters.") % {"limit": limit}]
    if "kind" in fields and fields["kind"] not in WORK_KINDS:
        errors["kind"] = [_("Unknown kind '%(kind)s'.") % {"kind": fields["kind"]}]
    if fields.get("year") is not None and not (0 < int(fields["year"]) < 10000):
        errors["year"] = [_("Not a year.")]
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)


def references_attach(*, work: Work, urls: Iterable[UrlReference], identifiers: Iterable[tuple[str, str]]) -> None:
    """Add URL and identifier references to a work; ones it already has are left as they are."""
    WorkURL.objects.bulk_create(
        [WorkURL(work=work, url=u.url, host=u.host, is_pattern=u.is_pattern, url_hash=u.url_hash) for u in urls],
        ignore_conflicts=True,
    )
    WorkIdentifier.objects.bulk_create(
        [WorkIdentifier(work=work, scheme=scheme, value=value) for scheme, value in identifiers],
        ignore_conflicts=True,
    )


def work_register(*, actor: Actor, organization: Organization, **fields: Any) -> Work:
    """Register a work for `organization` (a manager's, or a key with works:write)."""
    authorize(actor, organization, role=Membership.Role.MANAGER, scope="works:write")
    return do_work_register(acting=actor, organization=organization, **fields)


@transaction.atomic
def do_work_register(
    *,
    acting: Actor,
    organization: Organization,
    external_ref: str,
    title: str,
    kind: str = Work.Kind.OTHER,
    parent: Work | None = None,
    urls: Iterable[str] = (),
    identifiers: Iterable[str] = (),
    description: str = "",
    year: int | None = None,
    creators: str = "",
) -> Work:
    """Register a work with its URLs and identifiers, all or nothing; conflicts are detected at once."""
    external_ref = external_ref.strip()
    work_fields_validate(
        {"external_ref": external_ref, "title": title, "kind": kind, "year": year, "creators": creators,
         "description": description}
    )
    work_parent_validate(organization=organization, parent=parent)
    url_refs, identifier_refs = parse_references(urls=urls, identifiers=identifiers)
    try:
        with transaction.atomic():
            work = Work.objects.create(
                owner=organization, external_ref=external_ref, title=title.strip(), kind=kind, parent=parent,
                lineage=work_lineage_under(parent), description=description, year=year, creators=creators,
            )
    except IntegrityError as exc:
        raise Conflict(
            _("This organisation already has a work with external_ref '%(ref)s'.") % {"ref": external_ref},
            fields={"external_ref": [_("Already registered.")]},
        ) from exc
    added = references_replace(urls={work.pk: url_refs}, identifiers={work.pk: identifier_refs},
                               new_work_ids={work.pk})
    audit_append(
        actor=acting, action="work.register", object_type="work", object_id=str(work.pk),
        organization=organization,
        data={"external_ref": external_ref, "title": work.title, "parent": str(parent.pk) if parent else None,
              "urls": [u.url for u in url_refs], "identifiers": [f"{s}:{v}" for s, v in identifier_refs]},
    )
    conflicts_detect_references(references=added)
    return work


def work_update(*, actor: Actor, work: Work, **changes: Any) -> Work:
    authorize(actor, work.owner, role=Membership.Role.MANAGER, scope="works:write")
    return do_work_update(acting=actor, work=work, **changes)


@transaction.atomic
def do_work_update(
    *,
    acting: Actor,
    work: Work,
    urls: Iterable[str] | None = None,
    identifiers: Iterable[str] | None = None,
    **changes: Any,
) -> Work:
    """Change a work's descriptive fields, its parent, or replace its URL / identifier sets.

    The audit row records each changed field as {"old": ..., "new": ...}.
    """
    work = Work.objects.select_for_update().get(pk=work.pk)
    unknown = set(changes) - set(EDITABLE_FIELDS) - {"parent"}
    if unknown:
        raise ValidationFailed(
            _("These fields cannot be changed: %(fields)s.") % {"fields": ", ".join(sorted(unknown))}
        )
    work_fields_validate(changes)
    url_refs, identifier_refs = parse_references(urls=urls or (), identifiers=identifiers or ())
    changed: dict[str, dict[str, Any]] = {}
    for field in EDITABLE_FIELDS:
        if field in changes and getattr(work, field) != changes[field]:
            changed[field] = {"old": getattr(work, field), "new": changes[field]}
            setattr(work, field, changes[field])
    if "parent" in changes and changes["parent"] != work.parent:
        parent = changes["parent"]
        work_parent_validate(organization=work.owner, parent=parent, work=work)
        old_parent = str(work.parent_id) if work.parent_id else None
        work_subtree_move(work, parent)
        changed["parent"] = {"old": old_parent, "new": str(parent.pk) if parent else None}
    work.save()
    if urls is not None:
        old_urls = sorted(work.urls.values_list("url", flat=True))
        keep = {u.url_hash for u in url_refs}
        work.urls.exclude(url_hash__in=keep).delete()
        new_urls = sorted(u.url for u in url_refs)
        if new_urls != old_urls:
            changed["urls"] = {"old": old_urls, "new": new_urls}
    if identifiers is not None:
        held = list(work.identifiers.all())
        old_identifiers = sorted(f"{i.scheme}:{i.value}" for i in held)
        work.identifiers.exclude(pk__in=[i.pk for i in held if (i.scheme, i.value) in set(identifier_refs)]).delete()
        new_identifiers = sorted(f"{s}:{v}" for s, v in identifier_refs)
        if new_identifiers != old_identifiers:
            changed["identifiers"] = {"old": old_identifiers, "new": new_identifiers}
    references_attach(work=work, urls=url_refs, identifiers=identifier_refs)
    if changed:
        audit_append(
            actor=acting, action="work.update", object_type="work", object_id=str(work.pk),
            organization=work.owner, data=changed,
        )
    if urls is not None or identifiers is not None:
        conflicts_detect(work_ids=[work.pk])
    return work


def work_subtree_move(work: Work, parent: Work | None) -> None:
    """Re-parent a work and rewrite the lineage of everything under it."""
    old_prefix = f"{work.lineage}{work.pk.hex}/"
    work.parent = parent
    work.lineage = work_lineage_under(parent)
    new_prefix = f"{work.lineage}{work.pk.hex}/"
    descendants = list(Work.objects.select_for_update().filter(lineage__startswith=old_prefix))
    for descendant in descendants:
        descendant.lineage = new_prefix + descendant.lineage[len(old_prefix):]
        if descendant.lineage.count("/") > MAX_WORK_DEPTH + 1:
            raise ValidationFailed(
                _("Works nest at most %(depth)d deep.") % {"depth": MAX_WORK_DEPTH},
                fields={"parent": [_("Too deep.")]},
            )
    Work.objects.bulk_update(descendants, ["lineage"])


def work_withdraw(*, actor: Actor, work: Work, reason: str = "") -> Work:
    authorize(actor, work.owner, role=Membership.Role.MANAGER, scope="works:write")
    return do_work_withdraw(acting=actor, work=work, reason=reason)


@transaction.atomic
def do_work_withdraw(*, acting: Actor, work: Work, reason: str = "") -> Work:
    """Withdraw a work: from now on it answers not_permitted (work_withdrawn)."""
    work = Work.objects.select_for_update().get(pk=work.pk)
    if work.status == Work.Status.WITHDRAWN:
        return work
    work.status = Work.Status.WITHDRAWN
    work.withdrawn_at = timezone.now()
    work.save(update_fields=["status", "withdrawn_at", "updated_at"])
    audit_append(
        actor=acting, action="work.withdraw", object_type="work", object_id=str(work.pk),
        organization=work.owner, data={"status": {"old": Work.Status.ACTIVE, "new": work.status}, "reason": reason},
    )
    return work


def content_file_add_authorize(actor: Actor, work: Work) -> None:
    """Who may attach files to `work`: asked before an upload is even read, and by the service."""
    authorize(actor, work.owner, role=Membership.Role.MANAGER, scope="works:write")


def content_file_add(*, actor: Actor, work: Work, fileobj: IO[bytes], filename: str) -> ContentFile:
    content_file_add_authorize(actor, work)
    return do_content_file_add(acting=actor, work=work, fileobj=fileobj, filename=filename)


def do_content_file_add(*, acting: Actor, work: Work, fileobj: IO[bytes], filename: str) -> ContentFile:
    """Fingerprint a file and attach it to a work; a refused file leaves nothing behind.

    The file is hashed and sniffed before anything is written, so a bomb or a file whose
    name lies is refused with nothing stored. The same bytes added twice return the first.
    """
    if Work.objects.filter(pk=work.pk, status=Work.Status.WITHDRAWN).exists():
        raise ValidationFailed(
            _("This work is withdrawn; files cannot be added to it."),
            fields={"file": [_("Withdrawn.")]},
        )
    try:
        fingerprint = fingerprint_file(fileobj, filename=filename)
    except FileRejected as exc:
        raise ValidationFailed(str(exc), fields={"file": [str(exc)]}) from exc
    existing = ContentFile.objects.filter(work=work, sha256=fingerprint.sha256).first()
    if existing is not None:
        return existing
    fileobj.seek(0)
    content_file = ContentFile(
        work=work, sha256=fingerprint.sha256, size=fingerprint.size, media_type=fingerprint.media_type,
        width=fingerprint.width, height=fingerprint.height, original_name=filename[:255],
    )
    # Store the bytes first, under a content-addressed name; the rows follow in one transaction.
    content_file.file.save(f"{fingerprint.sha256}", File(fileobj), save=False)
    try:
        with transaction.atomic():
            content_file.save()
            if fingerprint.phash is not None:
                PerceptualHash.objects.create(
                    content_file=content_file, work=work, source=PerceptualHash.Source.IMAGE,
                    value=fingerprint.phash,
                    **phash_band_columns(fingerprint.phash),
                )
            audit_append(
                actor=acting, action="work.file_add", object_type="work", object_id=str(work.pk),
                organization=work.owner,
                data={"sha256": fingerprint.sha256, "media_type": fingerprint.media_type, "size": fingerprint.size},
            )
            conflicts_detect(work_ids=[work.pk])
    except BaseException:
        content_file.file.delete(save=False)
        raise
    return content_file
