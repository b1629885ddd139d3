"""Similarity flags: reviewers dismiss a resemblance or turn it into an ownership dispute.

Conflict detection raises the flags (registry/services/conflicts.py); nothing here freezes a work.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize_reviewer
from registry.exceptions import InvalidTransition
from registry.models import Dispute, SimilarityFlag
from registry.services.audit import audit_append
from registry.services.disputes import do_dispute_open


def similarity_flag_dismiss(*, actor: Actor, flag: SimilarityFlag) -> SimilarityFlag:
    authorize_reviewer(actor)
    return do_similarity_flag_dismiss(acting=actor, flag=flag)


@transaction.atomic
def do_similarity_flag_dismiss(*, acting: Actor, flag: SimilarityFlag) -> SimilarityFlag:
    """A reviewer finds the resemblance harmless: the flag leaves the list for good."""
    flag = _locked_open_flag(flag)
    _close(flag, acting=acting, status=SimilarityFlag.Status.DISMISSED)
    audit_append(
        actor=acting, action="similarity_flag.dismiss", object_type="similarity_flag", object_id=str(flag.pk),
        organization=flag.work_b.owner,
        data={"work_a": str(flag.work_a_id), "work_b": str(flag.work_b_id), "distance": flag.distance,
              "status": {"old": SimilarityFlag.Status.OPEN, "new": flag.status}},
    )
    return flag


def similarity_flag_escalate(*, actor: Actor, flag: SimilarityFlag, statement: str) -> Dispute:
    authorize_reviewer(actor)
    return do_similarity_flag_escalate(acting=actor, flag=flag, statement=statement)


@transaction.atomic
def do_similarity_flag_escalate(*, acting: Actor, flag: SimilarityFlag, statement: str) -> Dispute:
    """A reviewer turns a resemblance into an ownership dispute: the earlier registration claims,
    the later answers. It opens in triage like any dispute; starting its review freezes it."""
    flag = _locked_open_flag(flag)
    first, second = sorted((flag.work_a, flag.work_b), key=lambda w: (w.created_at, w.pk.hex))
    if not statement.strip():
        statement = _("Opened by a reviewer from a similarity flag: %(later)s resembles %(earlier)s.") % {
            "later": second.title, "earlier": first.title,
        }
    dispute = do_dispute_open(
        acting=acting, claimant=first.owner, kind=Dispute.Kind.OWNERSHIP, statement=statement,
        works=[first, second], triage=True,  # a reviewer opened it: theirs to triage, whatever the standing
    )
    _close(flag, acting=acting, status=SimilarityFlag.Status.ESCALATED)
    audit_append(
        actor=acting, action="similarity_flag.escalate", object_type="similarity_flag", object_id=str(flag.pk),
        organization=second.owner,
        data={"dispute": str(dispute.pk), "status": {"old": SimilarityFlag.Status.OPEN, "new": flag.status}},
    )
    return dispute


def _locked_open_flag(flag: SimilarityFlag) -> SimilarityFlag:
    flag = SimilarityFlag.objects.select_for_update().select_related("work_a__owner", "work_b__owner").get(pk=flag.pk)
    if flag.status != SimilarityFlag.Status.OPEN:
        status = str(flag.get_status_display()).lower()
        raise InvalidTransition(_("This flag is already %(status)s.") % {"status": status})
    return flag


def _close(flag: SimilarityFlag, *, acting: Actor, status: str) -> None:
    """Take a locked open flag off the list, naming the reviewer."""
    flag.status = status
    flag.reviewed_by = acting.user_or_none
    flag.reviewed_at = timezone.now()
    flag.save(update_fields=["status", "reviewed_by", "reviewed_at"])
