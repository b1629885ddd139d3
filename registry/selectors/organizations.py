"""Finding an organisation that a request names by slug."""

from __future__ import annotations

from django.utils.translation import gettext as _

from registry.exceptions import ValidationFailed
from registry.models import Organization


def organization_named(slug: str | None, *, field: str, kind: str) -> Organization | None:
    """The organisation of `kind` a request names by slug in `field`, or a field error; None for none.

    One answer for "no such slug" and "a slug of the other kind": an error must not tell a
    caller which slugs exist. The API and the portal's forms both look organisations up here.
    """
    if not slug:
        return None
    organization = Organization.objects.filter(slug=slug, kind=kind).first()
    if organization is None:
        message = (
            _("No AI developer organisation has that slug.") if kind == Organization.Kind.AI_DEVELOPER
            else _("No rightsholder organisation has that slug.")
        )
        raise ValidationFailed(message, fields={field: [message]})
    return organization
