"""Who is acting, and what they may do: the one place where permission is decided.

A public service asks `authorize` (or `authorize_reviewer`) and then calls its core action
(`do_<entity>_<verb>`), which only acts and names who acted in the audit trail. A person acts
through their membership role, a machine through its API key's organisation and scopes, a
reviewer through Django staff status and the "reviewer" group (`Actor.is_reviewer`, the one
definition). Nothing gets through because of a label: an operator actor (a management
command, a task, Kyoka's own conflict detection) is refused by every check here; it exists
only so that a core called directly can name who acted.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from registry.exceptions import PermissionDenied
from registry.models import ApiKey, Membership, Organization

ROLE_RANK = {Membership.Role.VIEWER: 1, Membership.Role.MANAGER: 2, Membership.Role.OWNER: 3}
REVIEWER_GROUP = "reviewer"


@dataclass(frozen=True)
class Actor:
    user: AbstractBaseUser | None = None
    api_key: ApiKey | None = None
    # A label for the audit trail when no person or key acts (e.g. "manage.py createorg").
    operator: str = ""

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Actor:
        return cls(user=user)

    @classmethod
    def for_key(cls, api_key: ApiKey) -> Actor:
        return cls(api_key=api_key)

    @classmethod
    def for_operator(cls, name: str) -> Actor:
        """An actor that authorization always refuses; cores accept it for their audit row."""
        return cls(operator=name)

    @property
    def label(self) -> str:
        """How the audit trail names this actor."""
        if self.user is not None:
            return f"user:{self.user.pk}:{self.user.get_username()}"
        if self.api_key is not None:
            return f"key:{self.api_key.prefix}"
        return f"operator:{self.operator}"

    @property
    def user_or_none(self) -> AbstractBaseUser | None:
        return self.user if self.user is not None and self.user.is_authenticated else None

    @property
    def is_reviewer(self) -> bool:
        user = self.user_or_none
        if user is None or not user.is_active or not user.is_staff:
            return False
        return user.is_superuser or user.groups.filter(name=REVIEWER_GROUP).exists()

    def role_in(self, organization: Organization) -> str | None:
        user = self.user_or_none
        if user is None or not user.is_active:
            return None
        return (
            Membership.objects.filter(user=user, organization=organization).values_list("role", flat=True).first()
        )


def reviewers_filter() -> Q:
    """`Actor.is_reviewer` as a query over users, for lists of reviewers (assignment, filters)."""
    return Q(is_active=True, is_staff=True) & (Q(is_superuser=True) | Q(groups__name=REVIEWER_GROUP))


def reviewers(users: QuerySet) -> QuerySet:
    return users.filter(reviewers_filter()).distinct()


def authorize(actor: Actor, organization: Organization, *, role: str, scope: str) -> None:
    """Raise PermissionDenied unless the actor may act for `organization` at `role` (or with `scope`)."""
    if actor.api_key is not None:
        key = actor.api_key
        if not key.is_usable or key.organization_id != organization.pk:
            raise PermissionDenied(_("This API key cannot act for that organisation."))
        if scope not in key.scopes:
            raise PermissionDenied(_("This API key lacks the '%(scope)s' scope.") % {"scope": scope})
        if organization.suspended_at is not None:
            raise PermissionDenied(_("This organisation is suspended."))
        return
    held = actor.role_in(organization)
    if held is None or ROLE_RANK[held] < ROLE_RANK[role]:
        raise PermissionDenied(
            _("This needs the %(role)s role in %(organization)s.")
            % {"role": str(Membership.Role(role).label).lower(), "organization": organization.name}
        )
    if organization.suspended_at is not None and role != Membership.Role.VIEWER:
        raise PermissionDenied(_("This organisation is suspended."))


def authorize_reviewer(actor: Actor) -> None:
    if not actor.is_reviewer:
        raise PermissionDenied(_("Only reviewers may do this."))
