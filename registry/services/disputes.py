"""Disputes: conflicting claims, settled by reviewers, every step on the record.

A dispute moves open → under_review → upheld | rejected, or to withdrawn (by its claimant)
from either open state; nothing else (Dispute.TRANSITIONS, enforced again by a database
trigger). While it is open, checks on its works answer `disputed`.

Locking: a function that changes a dispute locks its row first, then the works it touches,
then grants; the audit chain head is locked last, by the first audit_append. Registration
locks a work and then the chain head, so this order cannot deadlock against it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.exceptions import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from registry.models import (
    Dispute,
    DisputeEvent,
    DisputeWork,
    Grant,
    Membership,
    Organization,
    Work,
)
from registry.access import Actor, authorize, authorize_reviewer
from registry.services.audit import audit_append
from registry.services.evidence import Upload, evidence_errors, evidence_store
from registry.services.grants import grant_revoke
from registry.services.notifications import (
    notify_after_commit,
    notify_dispute_decided,
    notify_dispute_info_requested,
    notify_dispute_opened,
)
from registry.services.works import work_withdraw

MAX_STATEMENT_CHARS = 20_000


# --- opening -------------------------------------------------------------------------------


@transaction.atomic
def dispute_open(
    *,
    actor: Actor,
    claimant: Organization,
    kind: str,
    statement: str,
    works: Sequence[Work],
    evidence: Sequence[Upload] = (),
) -> Dispute:
    """File a dispute by hand about another organisation's works.

    `works` are the works the claim is about: those of one other organisation (the
    respondent) and, optionally, the claimant's own conflicting registrations. The
    respondent is told by email once the dispute is committed.
    """
    authorize(actor, claimant, role=Membership.Role.MANAGER, scope="disputes")
    statement = statement.strip()
    errors: dict[str, list[str]] = {}
    if kind not in Dispute.Kind.values:
        errors["kind"] = [_("Choose one of %(kinds)s.") % {"kinds": ", ".join(Dispute.Kind.values)}]
    if not statement:
        errors["statement"] = [_("Say what the dispute is about.")]
    elif len(statement) > MAX_STATEMENT_CHARS:
        errors["statement"] = [_("At most %(limit)d characters.") % {"limit": MAX_STATEMENT_CHARS}]
    works = list({work.pk: work for work in works}.values())
    others = {work.owner_id for work in works if work.owner_id != claimant.pk}
    if not others:
        errors["works"] = [_("Name at least one work of the organisation the dispute is against.")]
    elif len(others) > 1:
        errors["works"] = [_("A dispute is against one organisation: file one per organisation.")]
    errors.update(evidence_errors(evidence))
    if errors:
        raise ValidationFailed(_("The dispute is not valid."), fields=errors)
    respondent = Organization.objects.get(pk=others.pop())
    dispute = Dispute.objects.create(
        kind=kind,
        claimant=claimant,
        respondent=respondent,
        statement=statement,
        opened_by=actor.user_or_none,
    )
    DisputeWork.objects.bulk_create(
        DisputeWork(
            dispute=dispute,
            work=work,
            side=DisputeWork.Side.CLAIMANT if work.owner_id == claimant.pk else DisputeWork.Side.RESPONDENT,
        )
        for work in works
    )
    DisputeEvent.objects.create(
        dispute=dispute,
        kind=DisputeEvent.Kind.TRANSITION,
        actor=actor.user_or_none,
        organization=claimant,
        to_status=Dispute.Status.OPEN,
        message=statement,
    )
    stored = evidence_store(actor=actor, organization=claimant, dispute=dispute, evidence=evidence)
    _audit(
        actor,
        dispute,
        "open",
        organization=claimant,
        kind=kind,
        claimant=claimant.slug,
        respondent=respondent.slug,
        works={str(w.pk): ("claimant" if w.owner_id == claimant.pk else "respondent") for w in works},
        evidence=stored,
    )
    notify_after_commit(notify_dispute_opened, dispute_id=str(dispute.pk))
    return dispute


# --- the parties ---------------------------------------------------------------------------


@transaction.atomic
def dispute_comment(*, actor: Actor, dispute: Dispute, message: str, evidence: Sequence[Upload] = ()) -> DisputeEvent:
    """A party (a manager of either side, or its key) or a reviewer adds to an open dispute.

    Evidence files come from the parties: each is filed under the organisation that sent it.
    """
    dispute = _locked(dispute)
    party = _acting_party(actor, dispute)
    message = message.strip()
    errors = evidence_errors(evidence)
    if evidence and party is None:
        errors["evidence"] = [_("Evidence comes from the parties; reviewers comment without files.")]
    if not message:
        errors["message"] = [_("Write a comment.")]
    if errors:
        raise ValidationFailed(_("The comment is not valid."), fields=errors)
    if not dispute.is_open:
        raise Conflict(_("This dispute is closed."))
    event = DisputeEvent.objects.create(
        dispute=dispute,
        kind=DisputeEvent.Kind.COMMENT,
        actor=actor.user_or_none,
        organization=party,
        message=message,
    )
    stored = evidence_store(actor=actor, organization=party, dispute=dispute, evidence=evidence) if party else []
    _audit(actor, dispute, "comment", organization=party, message=message, evidence=stored)
    return event


@transaction.atomic
def dispute_withdraw(*, actor: Actor, dispute: Dispute, reason: str = "") -> Dispute:
    """The claimant drops its claim: the works answer as before, nothing else changes."""
    authorize(actor, dispute.claimant, role=Membership.Role.MANAGER, scope="disputes")
    dispute = _locked(dispute)
    _transition(
        actor,
        dispute,
        Dispute.Status.WITHDRAWN,
        message=reason.strip(),
        organization=dispute.claimant,
        decided=True,
    )
    notify_after_commit(notify_dispute_decided, dispute_id=str(dispute.pk))
    return dispute


# --- reviewers -----------------------------------------------------------------------------


@transaction.atomic
def dispute_assign(*, actor: Actor, dispute: Dispute, assignee: AbstractBaseUser | None) -> Dispute:
    """Give an open dispute to a reviewer (or to nobody)."""
    authorize_reviewer(actor)
    if assignee is not None and not Actor.for_user(assignee).is_reviewer:
        raise ValidationFailed(_("Disputes are assigned to reviewers."), fields={"assignee": [_("Not a reviewer.")]})
    dispute = _locked(dispute)
    if not dispute.is_open:
        raise InvalidTransition(_("A closed dispute is not assigned."))
    _assign(actor, dispute, assignee)
    return dispute


@transaction.atomic
def dispute_start_review(*, actor: Actor, dispute: Dispute) -> Dispute:
    """open → under_review. A dispute nobody holds goes to the reviewer who starts it."""
    authorize_reviewer(actor)
    dispute = _locked(dispute)
    _transition(actor, dispute, Dispute.Status.UNDER_REVIEW)
    if dispute.assignee_id is None and actor.user_or_none is not None:
        _assign(actor, dispute, actor.user_or_none)
    return dispute


@transaction.atomic
def dispute_request_info(
    *, actor: Actor, dispute: Dispute, message: str, party: Organization | None = None
) -> DisputeEvent:
    """A reviewer asks one party (or both, when `party` is None) for more; they are emailed."""
    authorize_reviewer(actor)
    message = message.strip()
    if not message:
        raise ValidationFailed(_("Say what you need."), fields={"message": [_("This field is required.")]})
    dispute = _locked(dispute)
    if party is not None and party.pk not in (dispute.claimant_id, dispute.respondent_id):
        raise ValidationFailed(_("Ask a party to the dispute."), fields={"party": [_("Not a party.")]})
    if not dispute.is_open:
        raise InvalidTransition(_("This dispute is closed."))
    event = DisputeEvent.objects.create(
        dispute=dispute,
        kind=DisputeEvent.Kind.INFO_REQUESTED,
        actor=actor.user_or_none,
        organization=party,
        message=message,
    )
    _audit(actor, dispute, "request_info", party=party.slug if party else None, message=message)
    notify_after_commit(notify_dispute_info_requested, dispute_event_id=event.pk)
    return event


@transaction.atomic
def dispute_decide(*, actor: Actor, dispute: Dispute, outcome: str, reason: str, remedy: str = "") -> Dispute:
    """Decide a dispute under review, and apply the decision, all in this one transaction.

    Ownership, upheld: the respondent's conflicting works are withdrawn or transferred to
    the claimant (`remedy`: the reviewer's choice), and the grants the respondent issued for
    them are revoked. Ownership, rejected: the claimant's conflicting registrations are
    withdrawn and its grants for them revoked. Other kinds record the decision only.

    Two reviewers deciding at once: the row lock makes the second wait, and it then finds
    the dispute decided and fails with InvalidTransition; nothing is applied twice.
    """
    authorize_reviewer(actor)
    reason = reason.strip()
    errors: dict[str, list[str]] = {}
    if outcome not in Dispute.DECIDED_STATUSES:
        errors["outcome"] = [_("Choose upheld or rejected.")]
    if not reason:
        errors["reason"] = [_("A decision gives its reason.")]
    if errors:
        raise ValidationFailed(_("The decision is not valid."), fields=errors)
    dispute = _locked(dispute)
    # Checked before any effect: a reviewer who lost the race must change nothing.
    if not dispute.can_move_to(outcome):
        raise InvalidTransition(
            _("A dispute that is %(from)s cannot become %(to)s.") % {"from": dispute.status, "to": outcome}
        )
    needs_remedy = dispute.kind == Dispute.Kind.OWNERSHIP and outcome == Dispute.Status.UPHELD
    if needs_remedy and remedy not in Dispute.Remedy.values:
        raise ValidationFailed(
            _("Choose what happens to the respondent's work."),
            fields={"remedy": [_("Choose withdraw or transfer.")]},
        )
    if not needs_remedy and remedy:
        raise ValidationFailed(
            _("Only an upheld ownership claim has a remedy."),
            fields={"remedy": [_("Leave empty.")]},
        )
    effects = _decision_effects(actor, dispute, outcome=outcome, remedy=remedy)
    dispute.decision_reason = reason
    dispute.remedy = remedy
    _transition(actor, dispute, outcome, message=reason, decided=True, effects=effects)
    notify_after_commit(notify_dispute_decided, dispute_id=str(dispute.pk))
    return dispute


# --- decisions' effects --------------------------------------------------------------------


def _decision_effects(actor: Actor, dispute: Dispute, *, outcome: str, remedy: str) -> dict:
    if dispute.kind != Dispute.Kind.OWNERSHIP:
        return {}
    if outcome == Dispute.Status.UPHELD:
        losing, side, winner = dispute.respondent, DisputeWork.Side.RESPONDENT, dispute.claimant
    else:
        losing, side, winner = dispute.claimant, DisputeWork.Side.CLAIMANT, None
    # Lock the losing side's works before anything is audited (see the module docstring).
    works = list(
        Work.objects.select_for_update()
        .filter(
            dispute_links__dispute=dispute,
            dispute_links__side=side,
            owner=losing,
            status=Work.Status.ACTIVE,
        )
        .order_by("pk")
    )
    authority = _decision_authority(actor, dispute)
    why = f"Dispute {dispute.pk} {outcome}"
    effects: dict[str, list[str]] = {"withdrawn": [], "transferred": [], "grants_revoked": []}
    for work in works:
        moving = _subtree(work) if remedy == Dispute.Remedy.TRANSFER else [work]
        grants = Grant.objects.filter(
            grantor=losing, scope=Grant.Scope.WORK, work__in=moving, revoked_at__isnull=True
        ).order_by("pk")
        for grant in grants:
            grant_revoke(actor=authority, grant=grant, reason=why)
            effects["grants_revoked"].append(str(grant.pk))
        if remedy == Dispute.Remedy.TRANSFER and winner is not None:
            _work_transfer(authority, work, moving, to=winner, why=why)
            effects["transferred"] += [str(w.pk) for w in moving]
        else:
            work_withdraw(actor=authority, work=work, reason=why)
            effects["withdrawn"].append(str(work.pk))
    return effects


def _decision_authority(actor: Actor, dispute: Dispute) -> Actor:
    """The reviewer, acting with the registry's authority over the parties' catalogs.

    A decision reaches into organisations the reviewer is no member of, which `authorize`
    would refuse; the effects run as the registry, and the audit trail still names the
    reviewer (Actor.label prefers the user).
    """
    return Actor(user=actor.user, api_key=actor.api_key, system=actor.system or f"dispute:{dispute.pk}")


def _subtree(work: Work) -> list[Work]:
    """A work and everything under it, locked: a transfer moves them together."""
    prefix = f"{work.lineage}{work.pk.hex}/"
    below = Work.objects.select_for_update().filter(lineage__startswith=prefix).order_by("lineage", "pk")
    return [work, *below]


def _work_transfer(actor: Actor, work: Work, moving: list[Work], *, to: Organization, why: str) -> None:
    """Give a work (and its descendants) to another organisation: an audited ownership change.

    It leaves its old parent, which stays with the old owner, and becomes a top-level work
    of the new one; the works under it keep their places beneath it.
    """
    taken = set(
        Work.objects.filter(owner=to, external_ref__in=[w.external_ref for w in moving]).values_list(
            "external_ref", flat=True
        )
    )
    if taken:
        raise Conflict(
            _(
                "%(organization)s already has works with these external refs: %(refs)s. "
                "Withdraw instead, or have them renamed first."
            )
            % {"organization": to.name, "refs": ", ".join(sorted(taken))}
        )
    old_prefix = f"{work.lineage}{work.pk.hex}/"
    new_prefix = f"/{work.pk.hex}/"
    previous_owner = work.owner
    now = timezone.now()
    for moved in moving:
        moved.owner = to
        moved.updated_at = now
        if moved.pk == work.pk:
            moved.parent = None
            moved.lineage = "/"
        else:
            moved.lineage = new_prefix + moved.lineage[len(old_prefix) :]
    Work.objects.bulk_update(moving, ["owner", "parent", "lineage", "updated_at"])
    for moved in moving:
        audit_append(
            actor=actor,
            action="work.transfer",
            object_type="work",
            object_id=str(moved.pk),
            organization=to.slug,
            data={"from": previous_owner.slug, "to": to.slug, "reason": why},
        )


# --- shared steps --------------------------------------------------------------------------


def _locked(dispute: Dispute) -> Dispute:
    return Dispute.objects.select_for_update().get(pk=dispute.pk)


def _assign(actor: Actor, dispute: Dispute, assignee: AbstractBaseUser | None) -> None:
    if dispute.assignee_id == (assignee.pk if assignee else None):
        return
    dispute.assignee = assignee
    dispute.save(update_fields=["assignee", "updated_at"])
    name = assignee.get_username() if assignee else ""
    DisputeEvent.objects.create(
        dispute=dispute, kind=DisputeEvent.Kind.ASSIGNED, actor=actor.user_or_none, message=name
    )
    _audit(actor, dispute, "assign", assignee=name or None)


def _transition(
    actor: Actor,
    dispute: Dispute,
    to_status: str,
    *,
    message: str = "",
    organization: Organization | None = None,
    decided: bool = False,
    effects: dict | None = None,
) -> None:
    """Move a locked dispute to `to_status`, or raise InvalidTransition; record the step."""
    from_status = dispute.status
    if not dispute.can_move_to(to_status):
        raise InvalidTransition(
            _("A dispute that is %(from)s cannot become %(to)s.") % {"from": from_status, "to": to_status}
        )
    dispute.status = to_status
    fields = ["status", "updated_at"]
    if decided:
        dispute.decided_at = timezone.now()
        dispute.decided_by = actor.user_or_none
        fields += ["decided_at", "decided_by", "decision_reason", "remedy"]
    dispute.save(update_fields=fields)
    DisputeEvent.objects.create(
        dispute=dispute,
        kind=DisputeEvent.Kind.TRANSITION,
        actor=actor.user_or_none,
        organization=organization,
        from_status=from_status,
        to_status=to_status,
        message=message,
    )
    data: dict = {"from": from_status, "to": to_status}
    if message:
        data["reason"] = message
    if dispute.remedy:
        data["remedy"] = dispute.remedy
    if effects:
        data["effects"] = effects
    action = {
        Dispute.Status.UNDER_REVIEW: "start_review",
        Dispute.Status.WITHDRAWN: "withdraw",
    }.get(Dispute.Status(to_status), "decide")
    _audit(actor, dispute, action, organization=organization, **data)


def _acting_party(actor: Actor, dispute: Dispute) -> Organization | None:
    """The side `actor` speaks for (None for a reviewer), or PermissionDenied."""
    parties = [dispute.claimant, dispute.respondent]
    if actor.api_key is not None:
        party = next((org for org in parties if org.pk == actor.api_key.organization_id), None)
        if party is None:
            raise PermissionDenied(_("This API key's organisation is not a party to this dispute."))
        authorize(actor, party, role=Membership.Role.MANAGER, scope="disputes")
        return party
    for party in parties:
        if actor.role_in(party) is not None:
            authorize(actor, party, role=Membership.Role.MANAGER, scope="disputes")
            return party
    if actor.system or actor.is_reviewer:
        return None
    raise PermissionDenied(_("Only the parties and reviewers take part in a dispute."))


def _audit(actor: Actor, dispute: Dispute, action: str, *, organization: Organization | None = None, **data) -> None:
    audit_append(
        actor=actor,
        action=f"dispute.{action}",
        object_type="dispute",
        object_id=str(dispute.pk),
        organization=(organization or dispute.respondent).slug,
        data=data,
    )
