"""Text Kyoka writes into stored data, as codes: rendered in each reader's language, not the writer's.

An automatically opened dispute's statement, its timeline notes and a bulk upload's row errors are
written by a worker that has no reader. They are stored as a code and JSON values (`code`,
`params`) beside an English `message`; `message_render` turns them into the active language.
Values are data (titles, names, references) and are never translated; only the sentence is.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

MESSAGES = {
    "dispute.opened_automatically": _("Opened automatically: the registrations conflict."),
    "dispute.conflict_statement": _(
        "“%(later_title)s” (%(later_ref)s), registered by %(later_owner)s, matches “%(earlier_title)s” "
        "(%(earlier_ref)s), registered earlier by %(earlier_owner)s: %(shared)s."
    ),
    # Bulk upload rows (registry/uploads/rows.py); the English is the report's wording, word for word.
    "upload.required": _("This field is required."),
    "upload.must_be_text": _("Must be text."),
    "upload.parent_must_be_text": _("Must be text: the external_ref of the parent work."),
    "upload.duplicate_ref": _(
        "'%(ref)s' already appears on row %(row)s; an external_ref may appear only once in a manifest."),
    "upload.hierarchy_broken": _(
        "'%(ref)s' makes a cycle within the manifest, or a chain of works more than %(depth)s deep."),
    "upload.not_a_year": _("Not a year: %(value)s."),
    "upload.not_a_sha256": _("Not a SHA-256: expected 64 hex characters."),
    "upload.too_many_references": _("At most %(limit)s per row."),
    "upload.list_grammar": _("Must be text separated by '%(separator)s', or a list of text."),
    "upload.no_archive": _("Names a file, but the upload has no archive."),
    "upload.not_in_archive": _("The archive has no file '%(name)s'."),
    "upload.phash_needs_sha256": _("A phash needs the file's sha256 as well (or the file itself)."),
    "upload.sha256_mismatch": _("Does not match the file '%(name)s', whose SHA-256 is %(sha256)s."),
    "upload.parent_not_registered": _(
        "'%(ref)s' (row %(row)s) was not registered, so it cannot be the parent; see that row's errors."),
    "upload.parent_unknown": _("No work '%(ref)s' in this manifest or among %(organization)s's works."),
    # `detail` and `reason` are a service's own messages, stored in English and translated when shown.
    "upload.parent_refused": _("'%(ref)s': %(detail)s"),
    "upload.parent_move_refused": _("'%(ref)s': %(detail)s (%(reason)s)"),
    "upload.row_refused": _("The row cannot be stored: %(detail)s"),
}
# How one shared reference reads inside a conflict statement.
SHARED_REFERENCE = {
    "sha256": _("the same file (%(value)s)"),
    "identifier": _("the same identifier (%(value)s)"),
    "url": _("the same URL (%(value)s)"),
}


def message_render(code: str, params: dict[str, Any] | None, fallback: str = "") -> str:
    """The stored message in the active language; the stored English when the code is unknown."""
    template = MESSAGES.get(code)
    if template is None:
        return fallback
    values = dict(params or {})
    if "matches" in values:
        values["shared"] = gettext("; ").join(
            gettext(SHARED_REFERENCE[m["method"]]) % {"value": m["value"]}
            for m in values.pop("matches") if m.get("method") in SHARED_REFERENCE
        )
    for name in ("detail", "reason"):
        if isinstance(values.get(name), str):
            values[name] = gettext(values[name])
    try:
        return gettext(template) % values
    except (KeyError, TypeError, ValueError):
        return fallback


class CodedMessage(str):
    """A message that is its English text (for reports and logs) and also a code with values."""

    code: str
    params: dict[str, Any]


def coded(code: str, **params: Any) -> CodedMessage:
    """The message `code` in English, carrying its code and values to be stored beside it."""
    with translation.override("en"):
        text = gettext(MESSAGES[code]) % params if params else gettext(MESSAGES[code])
    message = CodedMessage(text)
    message.code, message.params = code, params
    return message
