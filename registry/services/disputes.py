"""Disputes: conflicting claims, settled by reviewers, every step on the record.

A dispute moves open → under_review → upheld | rejected, or to withdrawn (by its claimant)
from either open state; nothing else (Dispute.TRANSITIONS, enforced again by a database
trigger). While it is open, the works it freezes answer `disputed` (DisputeWork.freezes):
a dispute filed by a claimant with standing (verified, not suspended) freezes its works at
once; any other waits in the reviewers' triage queue, freezing nothing, until a reviewer
starts its review (which freezes every work of it) or rejects it.

Each public function authorises its caller and calls its core (`do_dispute_*`), which only
acts, naming who acted; decisions call the cores of grants and works for their effects.

Longer than most modules on purpose: every step of a dispute, its authorization beside its core,
in one place, so the lock order stated here is visible wherever a dispute changes.

Locking: a function that changes a dispute locks its row first, then the works it touches,
then grants; the audit chain head is locked last, by the first audit_append. Registration
locks a work and then the chain head, so this order cannot deadlock against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize, authorize_reviewer
from registry.exceptions import Conflict, InvalidTransition, LimitReached, PermissionDenied, ValidationFailed
from registry.models import (
    Dispute,
    DisputeEvent,
    DisputeWork,
    Grant,
    Membership,
    Organization,
    Work,
)
from registry.selectors.standing import org_has_standing
from registry.services.audit import audit_append
from registry.services.evidence import Upload, evidence_errors, evidence_store
from registry.services.grants import do_grant_revoke
from registry.services.notifications import (
    notify_after_commit,
    notify_dispute_decided,
    notify_dispute_info_requested,
    notify_dispute_opened,
)
from registry.services.works import do_work_withdraw

MAX_STATEMENT_CHARS = 20_000
# What one organisation may file by hand: open at once, and in any 24 hours. Kyoka's own
# conflict disputes do not count; they are not the claimant's doing.
MAX_OPEN_DISPUTES = 10
MAX_DISPUTES_PER_DAY = 20


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
    """A party files a dispute by hand, within its limits (MAX_OPEN_DISPUTES, MAX_DISPUTES_PER_DAY)."""
    authorize(actor, claimant, role=Membership.Role.MANAGER, scope="disputes")
    dispute_limits_check(claimant)
    return do_dispute_open(
        acting=actor, claimant=claimant, kind=kind, statement=statement, works=works, evidence=evidence
    )


def dispute_limits_check(claimant: Organization) -> None:
    """Raise LimitReached when `claimant` may file no more disputes now.

    The claimant's row is locked first, so two filings at once cannot both take the last place.
    """
    Organization.objects.select_for_update().filter(pk=claimant.pk).first()
    filed = Dispute.objects.filter(claimant=claimant, conflict_key__isnull=True)
    if filed.filter(status__in=Dispute.OPEN_STATUSES).count() >= MAX_OPEN_DISPUTES:
        raise LimitReached(
            _("Your organisation already has %(limit)d open disputes; wait for one to be decided or withdraw one.")
            % {"limit": MAX_OPEN_DISPUTES}
        )
    if filed.filter(created_at__gte=timezone.now() - timedelta(days=1)).count() >= MAX_DISPUTES_PER_DAY:
        raise LimitReached(
            _("Your organisation has filed %(limit)d disputes in the last 24 hours; try again later.")
            % {"limit": MAX_DISPUTES_PER_DAY}
        )


@transaction.atomic
def do_dispute_open(
    *,
    acting: Actor,
    claimant: Organization,
    kind: str,
    statement: str,
    works: Sequence[Work],
    evidence: Sequence[Upload] = (),
    triage: bool = False,
) -> Dispute:
    """Open a dispute about another organisation's works.

    `works` are the works the claim is about: those of one other organisation (the
    respondent) and, optionally, the claimant's own conflicting registrations. They freeze
    at once when the claimant has standing (and `triage` is not asked for); otherwise the
    dispute waits in triage. The
    respondent is told by email once the dispute is committed.
    """
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
    claimant = Organization.objects.get(pk=claimant.pk)  # standing as it is now, not as the caller saw it
    freezes = org_has_standing(claimant) and not triage
    dispute = Dispute.objects.create(
        kind=kind,
        claimant=claimant,
        respondent=respondent,
        statement=statement,
        opened_by=acting.user_or_none,
    )
    DisputeWork.objects.bulk_create(
        DisputeWork(
            dispute=dispute,
            work=work,
            side=DisputeWork.Side.CLAIMANT if work.owner_id == claimant.pk else DisputeWork.Side.RESPONDENT,
            freezes=freezes,
        )
        for work in works
    )
    DisputeEvent.objects.create(
        dispute=dispute,
        kind=DisputeEvent.Kind.TRANSITION,
        actor=acting.user_or_none,
        organization=claimant,
        to_status=Dispute.Status.OPEN,
        message=statement,
    )
    stored = evidence_store(actor=acting, organization=claimant, dispute=dispute, evidence=evidence)
    _audit(
        acting,
        dispute,
        "open",
        organization=claimant,
        kind=kind,
        claimant=claimant.slug,
        respondent=respondent.slug,
        works={str(w.pk): ("claimant" if w.owner_id == claimant.pk else "respondent") for w in works},
        freezes=freezes,
        evidence=stored,
    )
    notify_after_commit(notify_dispute_opened, dispute_id=str(dispute.pk))
    return dispute


# --- the parties ---------------------------------------------------------------------------


def dispute_comment(*, actor: Actor, dispute: Dispute, message: str, evidence: Sequence[Upload] = ()) -> DisputeEvent:
    """A party (a manager of either side, or its key) or a reviewer adds to an open dispute."""
    party = dispute_acting_party(actor, dispute)
    return do_dispute_comment(acting=actor, dispute=dispute, party=party, message=message, evidence=evidence)


@transaction.atomic
def do_dispute_comment(
    *, acting: Actor, dispute: Dispute, party: Organization | None, message: str, evidence: Sequence[Upload] = ()
) -> DisputeEvent:
    """Add a comment for `party` (None: a reviewer's). Evidence files come from the parties:
    each is filed under the organisation that sent it."""
    dispute = _locked(dispute)
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
        actor=acting.user_or_none,
        organization=party,
        message=message,
    )
    stored = evidence_store(actor=acting, organization=party, dispute=dispute, evidence=evidence) if party else []
    _audit(acting, dispute, "comment", organization=party, message=message, evidence=stored)
    return event


def dispute_withdraw(*, actor: Actor, dispute: Dispute, reason: str = "") -> Dispute:
    authorize(actor, dispute.claimant, role=Membership.Role.MANAGER, scope="disputes")
    return do_dispute_withdraw(acting=actor, dispute=dispute, reason=reason)


@transaction.atomic
def do_dispute_withdraw(*, acting: Actor, dispute: Dispute, reason: str = "") -> Dispute:
    """The claimant drops its claim: the works answer as before, nothing else changes."""
    dispute = _locked(dispute)
    _transition(
        acting,
        dispute,
        Dispute.Status.WITHDRAWN,
        message=reason.strip(),
        organization=dispute.claimant,
        decided=True,
    )
    notify_after_commit(notify_dispute_decided, dispute_id=str(dispute.pk))
    return dispute


# --- reviewers -----------------------------------------------------------------------------


def dispute_assign(*, actor: Actor, dispute: Dispute, assignee: AbstractBaseUser | None) -> Dispute:
    authorize_reviewer(actor)
    return do_dispute_assign(acting=actor, dispute=dispute, assignee=assignee)


@transaction.atomic
def do_dispute_assign(*, acting: Actor, dispute: Dispute, assignee: AbstractBaseUser | None) -> Dispute:
    """Give an open dispute to a reviewer (or to nobody)."""
    if assignee is not None and not Actor.for_user(assignee).is_reviewer:
        raise ValidationFailed(_("Disputes are assigned to reviewers."), fields={"assignee": [_("Not a reviewer.")]})
    dispute = _locked(dispute)
    if not dispute.is_open:
        raise InvalidTransition(_("A closed dispute is not assigned."))
    _assign(acting, dispute, assignee)
    return dispute


def dispute_start_review(*, actor: Actor, dispute: Dispute) -> Dispute:
    authorize_reviewer(actor)
    return do_dispute_start_review(acting=actor, dispute=dispute)


@transaction.atomic
def do_dispute_start_review(*, acting: Actor, dispute: Dispute) -> Dispute:
    """open → under_review: every work of the dispute freezes from now until it is decided.
    A dispute nobody holds goes to the reviewer who starts it."""
    dispute = _locked(dispute)
    _transition(acting, dispute, Dispute.Status.UNDER_REVIEW)
    DisputeWork.objects.filter(dispute=dispute, freezes=False).update(freezes=True)
    if dispute.assignee_id is None and acting.user_or_none is not None:
        _assign(acting, dispute, acting.user_or_none)
    return dispute


def dispute_request_info(
    *, actor: Actor, dispute: Dispute, message: str, party: Organization | None = None
) -> DisputeEvent:
    authorize_reviewer(actor)
    return do_dispute_request_info(acting=actor, dispute=dispute, message=message, party=party)


@transaction.atomic
def do_dispute_request_info(
    *, acting: Actor, dispute: Dispute, message: str, party: Organization | None = None
) -> DisputeEvent:
    """A reviewer asks one party (or both, when `party` is None) for more; they are emailed."""
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
        actor=acting.user_or_none,
        organization=party,
        message=message,
    )
    _audit(acting, dispute, "request_info", party=party.slug if party else None, message=message)
    notify_after_commit(notify_dispute_info_requested, dispute_event_id=event.pk)
    return event


def dispute_decide(*, actor: Actor, dispute: Dispute, outcome: str, reason: str, remedy: str = "") -> Dispute:
    authorize_reviewer(actor)
    return do_dispute_decide(acting=actor, dispute=dispute, outcome=outcome, reason=reason, remedy=remedy)


@transaction.atomic
def do_dispute_decide(*, acting: Actor, dispute: Dispute, outcome: str, reason: str, remedy: str = "") -> Dispute:
    """Decide a dispute under review, and apply the decision, all in this one transaction.

    Ownership, upheld: the respondent's conflicting works are withdrawn or transferred to
    the claimant (`remedy`: the reviewer's choice), and the grants the respondent issued for
    them are revoked. Ownership, rejected: the claimant's conflicting registrations are
    withdrawn and its grants for them revoked. Other kinds record the decision only.

    Two reviewers deciding at once: the row lock makes the second wait, and it then finds
    the dispute decided and fails with InvalidTransition; nothing is applied twice.
    """
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
    effects = _decision_effects(acting, dispute, outcome=outcome, remedy=remedy)
    dispute.decision_reason = reason
    dispute.remedy = remedy
    _transition(acting, dispute, outcome, message=reason, decided=True, effects=effects)
    notify_after_commit(notify_dispute_decided, dispute_id=str(dispute.pk))
    return dispute


# --- decisions' effects --------------------------------------------------------------------


def _decision_effects(acting: Actor, dispute: Dispute, *, outcome: str, remedy: str) -> dict:
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
    why = f"Dispute {dispute.pk} {outcome}"
    effects: dict[str, list[str]] = {"withdrawn": [], "transferred": [], "grants_revoked": []}
    for work in works:
        moving = _subtree(work) if remedy == Dispute.Remedy.TRANSFER else [work]
        grants = Grant.objects.filter(
            grantor=losing, scope=Grant.Scope.WORK, work__in=moving, revoked_at__isnull=True
        ).order_by("pk")
        for grant in grants:
            do_grant_revoke(acting=acting, grant=grant, reason=why)
            effects["grants_revoked"].append(str(grant.pk))
        if remedy == Dispute.Remedy.TRANSFER and winner is not None:
            _work_transfer(acting, work, moving, to=winner, why=why)
            effects["transferred"] += [str(w.pk) for w in moving]
        else:
            do_work_withdraw(acting=acting, work=work, reason=why)
            effects["withdrawn"].append(str(work.pk))
    return effects


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
            organization=to,
            data={
                "owner": {"old": previous_owner.pk, "new": to.pk},
                "from": previous_owner.slug, "to": to.slug, "reason": why,
            },
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


def dispute_acting_party(actor: Actor, dispute: Dispute) -> Organization | None:
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
    if actor.is_reviewer:
        return None
    raise PermissionDenied(_("Only the parties and reviewers take part in a dispute."))


def _audit(actor: Actor, dispute: Dispute, action: str, *, organization: Organization | None = None, **data) -> None:
    audit_append(
        actor=actor,
        action=f"dispute.{action}",
        object_type="dispute",
        object_id=str(dispute.pk),
        organization=organization or dispute.respondent,
        data=data,
    )

