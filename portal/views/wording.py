"""Plain words for what a grant allows and what a decision means, in the active language."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from portal.forms import CONTEXT_LABELS, PURPOSE_LABELS
from portal.views.common import territory_name


def _join(parts: Sequence[str]) -> str:
    parts = [str(p) for p in parts]
    if len(parts) <= 1:
        return "".join(parts)
    # Translators: how a list ends, e.g. "A, B and C"; in Japanese, "A、B、C".
    return _("%(items)s and %(last)s") % {"items": _(", ").join(parts[:-1]), "last": parts[-1]}


def _mid_sentence(label: object, lower: bool) -> str:
    text = str(label)
    return text[:1].lower() + text[1:] if lower else text


def grant_effect(
    *,
    grantor_name: str,
    licensee_name: str | None,
    scope: str,
    work_title: str | None,
    purposes: Sequence[str],
    territories: Sequence[str],
    contexts: Sequence[str],
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> str:
    """One sentence: who may use what, for what, where, in which context, and until when."""
    licensee = licensee_name or _("Any verified AI developer")
    if scope == "work":
        what = _("“%(title)s” and everything under it") % {"title": work_title or ""}
    else:
        what = _("the whole catalog of %(grantor)s (present and future)") % {"grantor": grantor_name}
    # Mid-sentence, English lowercases the labels ("for training generative models").
    lower = (get_language() or "en").startswith("en")
    purposes_text = _join([_mid_sentence(PURPOSE_LABELS[p], lower) for p in purposes if p in PURPOSE_LABELS])
    if territories:
        where = _("in %(territories)s") % {"territories": _join([territory_name(t) for t in territories])}
    else:
        where = _("anywhere in the world")
    if contexts:
        labels = [_mid_sentence(CONTEXT_LABELS[c], lower) for c in contexts]
        context = _("for %(contexts)s use only") % {"contexts": _join(labels)}
    else:
        context = _("in any context (commercial, non-commercial or research)")
    starts_later = valid_from is not None and valid_from > timezone.now()
    if valid_until is not None and starts_later:
        when = _("from %(start)s until %(end)s") % {
            "start": date_format(valid_from, "DATE_FORMAT"), "end": date_format(valid_until, "DATE_FORMAT")}
    elif valid_until is not None:
        when = _("until %(end)s") % {"end": date_format(valid_until, "DATE_FORMAT")}
    elif starts_later:
        when = _("from %(start)s, with no end date") % {"start": date_format(valid_from, "DATE_FORMAT")}
    else:
        when = _("with no end date")
    return _("%(licensee)s may use %(what)s for %(purposes)s, %(where)s, %(context)s, %(when)s.") % {
        "licensee": licensee, "what": what, "purposes": purposes_text, "where": where,
        "context": context, "when": when,
    }
