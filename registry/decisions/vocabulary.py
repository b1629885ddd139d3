"""The words a check answers with, declared once.

These TextChoices are at the same time the API's codes, the portal's labels and the templates'
cases: a new reason is added here and nowhere else.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Decision(models.TextChoices):
    PERMITTED = "permitted", _("Permitted")
    NOT_PERMITTED = "not_permitted", _("Not permitted")
    UNREGISTERED = "unregistered", _("Unregistered")
    DISPUTED = "disputed", _("Disputed")
    INVALID = "invalid", _("Invalid")


class Reason(models.TextChoices):
    NO_MATCH = "no_match", _("No registered work matches — no record is not permission.")
    SIMILAR_ONLY = "similar_only", _(
        "Only similar works are registered: a resemblance is not permission. Ask their owners."
    )
    DISPUTE_OPEN = "dispute_open", _("Ownership of a matching work is disputed.")
    WORK_WITHDRAWN = "work_withdrawn", _("The work has been withdrawn by its owner.")
    NO_GRANT = "no_grant", _("The owner has granted no permission for this work.")
    LICENSEE_NOT_GRANTED = "licensee_not_granted", _("The owner has not granted permission to your organisation.")
    REQUESTER_UNVERIFIED = "requester_unverified", _("Your organisation is not verified yet.")
    PURPOSE_NOT_GRANTED = "purpose_not_granted", _("Permission does not cover this purpose.")
    GRANT_REVOKED = "grant_revoked", _("The permission has been revoked.")
    GRANT_EXPIRED = "grant_expired", _("The permission has expired.")
    GRANT_NOT_YET_VALID = "grant_not_yet_valid", _("The permission is not in force yet.")
    TERRITORY_NOT_GRANTED = "territory_not_granted", _("Permission does not cover this territory.")
    CONTEXT_NOT_GRANTED = "context_not_granted", _("Permission does not cover this context of use.")
    GRANTOR_UNVERIFIED = "grantor_unverified", _("The owner is not verified yet, so its grants do not count.")
    HOST_UNVERIFIED = "host_unverified", _(
        "The owner has not proven that it controls this web host, so its registration of the URL does not count."
    )
    INVALID_ITEM = "invalid_item", _("The item is not valid.")


class Method(models.TextChoices):
    """How an item matched a work. Exact methods can decide; `phash` is similarity only."""

    SHA256 = "sha256", _("File hash (SHA-256)")
    URL = "url", _("URL")
    IDENTIFIER = "identifier", _("Identifier")
    PHASH = "phash", _("Perceptual similarity")


EXACT_METHODS = frozenset({Method.SHA256, Method.URL, Method.IDENTIFIER})

# The conditions a covering grant must meet, in the order a missing one is reported; each
# condition's possible reasons (being in force can fail three ways).
GRANT_CONDITIONS: tuple[tuple[Reason, ...], ...] = (
    (Reason.LICENSEE_NOT_GRANTED,),
    (Reason.REQUESTER_UNVERIFIED,),
    (Reason.PURPOSE_NOT_GRANTED,),
    (Reason.GRANT_REVOKED, Reason.GRANT_EXPIRED, Reason.GRANT_NOT_YET_VALID),
    (Reason.TERRITORY_NOT_GRANTED,),
    (Reason.CONTEXT_NOT_GRANTED,),
    (Reason.GRANTOR_UNVERIFIED,),
)
CONDITION_RANK = {reason: rank for rank, reasons in enumerate(GRANT_CONDITIONS) for reason in reasons}
