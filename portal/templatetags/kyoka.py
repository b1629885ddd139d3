"""Template filters for the portal."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from registry.decisions.vocabulary import Decision, Reason
from registry.matching.fingerprints import phash_to_hex
from registry.models.grants import GrantState

register = template.Library()


@register.filter
def decision_label(value: str) -> str:
    """A decision code in the reader's words (the codes and labels are declared once, in the vocabulary)."""
    return Decision(value).label if value in Decision.values else value


@register.filter
def reason_label(value: str) -> str:
    return Reason(value).label if value in Reason.values else value


@register.filter
def grant_state_label(value: str) -> str:
    return GrantState(value).label if value in GrantState.values else value


@register.filter
def phash_hex(value: int) -> str:
    return phash_to_hex(value)


@register.filter
def kind_label(value: str) -> str:
    from portal.forms import KIND_LABELS

    return str(KIND_LABELS.get(value, value))


@register.filter
def role_label(value: str) -> str:
    from portal.forms import ROLE_LABELS

    return str(ROLE_LABELS.get(value, value))


@register.filter
def territory(value: str) -> str:
    from portal.views.common import territory_name

    return territory_name(value)


@register.filter
def number(value: int | float | None) -> str:
    """A count with the active language's digit grouping (12,345)."""
    if value is None:
        return "—"
    return number_format(value, force_grouping=True)


@register.filter
def context_label(value: str) -> str:
    from portal.forms import CONTEXT_LABELS

    return str(CONTEXT_LABELS.get(value, value))


TIME_ZONE_LABELS = {
    "Asia/Tokyo": _("Tokyo"), "Asia/Seoul": _("Seoul"), "Asia/Shanghai": _("Shanghai"),
    "Asia/Singapore": _("Singapore"), "Europe/London": _("London"), "Europe/Paris": _("Paris"),
    "America/New_York": _("New York"), "America/Los_Angeles": _("Los Angeles"), "Australia/Sydney": _("Sydney"),
}


@register.filter
def tz_label(zone: str) -> str:
    """A time zone as people pick it: its city and today's offset, e.g. “Tokyo (UTC+09:00)”."""
    offset = datetime.now(ZoneInfo(zone)).strftime("%z")
    return f"{TIME_ZONE_LABELS.get(zone, zone)} (UTC{offset[:3]}:{offset[3:]})"


@register.filter
def page_title(value: str) -> str:
    """The tab title: the page's own title, a separator, then the registry's name."""
    name = f"Kyoka {_('consent registry')}"
    return f"{value.strip()} · {name}" if value and value.strip() else name


@register.filter
def statement_text(dispute) -> str:
    """A dispute's statement: Kyoka's own in the reader's language, a party's as they wrote it."""
    from registry.message_codes import message_render

    return message_render(dispute.statement_code, dispute.statement_params, dispute.statement)


@register.filter
def coded_message(entry) -> str:
    """A timeline note or an upload row error in the reader's language (its stored English otherwise)."""
    from registry.message_codes import message_render

    return message_render(getattr(entry, "code", ""), getattr(entry, "params", None), entry.message)


@register.filter
def audit_actor(label: str) -> str:
    """The audit trail's actor label as a person reads it: user:7:ana@x → ana@x, key:kyk_ab → key kyk_ab…."""
    kind, _sep, rest = (label or "").partition(":")
    if kind == "user":
        return rest.partition(":")[2] or rest
    if kind == "key":
        return f"{_('API key')} {rest}…"
    if kind == "operator":
        return f"Kyoka ({rest})"
    return label


@register.filter
def audit_value(value) -> str:
    """A value recorded in the audit trail, without Python's brackets and quotes."""
    if isinstance(value, dict):
        if set(value) == {"old", "new"}:
            return f"{audit_value(value['old'])} → {audit_value(value['new'])}"
        return "; ".join(f"{key}: {audit_value(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(audit_value(item) for item in value) or "—"
    if value is None or value == "":
        return "—"
    if value is True or value is False:
        return str(_("yes") if value else _("no"))
    return str(value)


@register.filter
def moment(value):
    """An ISO 8601 time from a receipt (2027-12-01T21:03:46.671588Z) as an aware datetime for |date."""
    from django.utils.dateparse import parse_datetime

    return parse_datetime(value) if isinstance(value, str) else value


@register.filter
def upload_error_text(error) -> str:
    """A bulk upload row error in the reader's language.

    Coded errors render from their code; the rest were written by the worker in English from the
    registry's own catalog (a service's field error such as "This field is required."), so the stored
    text is itself a msgid: translated when it is one, shown as stored otherwise.
    """
    from django.utils.translation import gettext

    from registry.message_codes import message_render

    return message_render(error.code, error.params, gettext(error.message) if error.message else "")
