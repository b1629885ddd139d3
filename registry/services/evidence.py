"""Evidence files: what backs a dispute statement or an organisation's verification request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import IO

from django.utils.translation import gettext as _

from registry.access import Actor
from registry.models import Dispute, EvidenceFile, Organization, VerificationRequest

MAX_EVIDENCE_FILES = 10
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024

Upload = tuple[IO[bytes], str]  # (file object, original file name)


def evidence_errors(evidence: Sequence[Upload]) -> dict[str, list[str]]:
    """Problems with a set of uploads, as field errors under "evidence" (empty when none)."""
    problems = []
    if len(evidence) > MAX_EVIDENCE_FILES:
        problems.append(_("At most %(limit)d files.") % {"limit": MAX_EVIDENCE_FILES})
    for fileobj, name in evidence:
        size = getattr(fileobj, "size", None)
        if size is None:
            size = fileobj.seek(0, 2)
            fileobj.seek(0)
        if size > MAX_EVIDENCE_BYTES:
            problems.append(
                _("%(name)s: larger than %(limit)d MB.") % {"name": name, "limit": MAX_EVIDENCE_BYTES // (1024 * 1024)}
            )
        elif size == 0:
            problems.append(_("%(name)s: empty.") % {"name": name})
    return {"evidence": problems} if problems else {}


def evidence_store(
    *,
    actor: Actor,
    organization: Organization,
    evidence: Iterable[Upload],
    dispute: Dispute | None = None,
    verification_request: VerificationRequest | None = None,
) -> list[str]:
    """Store uploads already checked by evidence_errors; returns their names for the audit trail.

    Called inside the caller's transaction. The bytes go to storage first, so a transaction
    that later rolls back can leave an unreferenced file behind, never a row without its file.
    """
    names = []
    for fileobj, name in evidence:
        record = EvidenceFile(
            dispute=dispute,
            verification_request=verification_request,
            organization=organization,
            original_name=name[:255],
            uploaded_by=actor.user_or_none,
        )
        fileobj.seek(0)
        # Only the last part of the name: a client-supplied path must not pick the folder.
        record.file.save(PurePath(name).name[-100:] or "evidence", fileobj, save=False)
        record.save()
        names.append(record.original_name)
    return names
