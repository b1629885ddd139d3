"""The portal's forms. They only parse what people type; the registry's services decide what is valid."""

from __future__ import annotations

import json
import re

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from registry.models import API_KEY_SCOPES, Dispute, Membership, Organization, Work, WorkIdentifier
from registry.purposes import CONTEXTS, PURPOSES

PURPOSE_LABELS = {
    "all": _("Every purpose"),
    "tdm": _("Text and data mining, analysis"),
    "train-ai": _("Training any AI model"),
    "train-genai": _("Training generative models"),
    "ai-use": _("Input when a model runs (RAG, grounding, prompting)"),
    "search": _("Search indexing"),
}
CONTEXT_LABELS = {"commercial": _("Commercial"), "non-commercial": _("Non-commercial"), "research": _("Research")}
KIND_LABELS = {
    "image": _("Image"), "video": _("Video"), "audio": _("Audio"), "text": _("Text"),
    "character": _("Character"), "collection": _("Collection"), "other": _("Other"),
}
ROLE_LABELS = {"owner": _("Owner"), "manager": _("Manager"), "viewer": _("Viewer")}
STATUS_LABELS = {"active": _("Active"), "withdrawn": _("Withdrawn")}
PURPOSE_CHOICES = [(p, format_lazy("{} — {}", p, PURPOSE_LABELS[p])) for p in PURPOSES]
CONTEXT_CHOICES = [(c, CONTEXT_LABELS[c]) for c in CONTEXTS]
KIND_CHOICES = [(k, KIND_LABELS[k]) for k in Work.Kind.values]
ROLE_CHOICES = [(r, ROLE_LABELS[r]) for r in Membership.Role.values]
SCOPE_LABELS = {
    "checks": _("Check works (the check API)"),
    "works:read": _("Read your works"),
    "works:write": _("Register and change works"),
    "grants:write": _("Issue and revoke grants"),
    "uploads": _("Bulk uploads"),
    "disputes": _("Read and answer disputes"),
}
SCOPE_CHOICES = [(s, format_lazy("{} — {}", s, SCOPE_LABELS[s])) for s in API_KEY_SCOPES]
DISPUTE_KIND_LABELS = {
    "ownership": _("Ownership: the work is ours, not theirs"),
    "grant_validity": _("Grant validity: a grant should not count"),
    "other": _("Something else"),
}
DISPUTE_KIND_CHOICES = [(k, DISPUTE_KIND_LABELS[k]) for k in Dispute.Kind.values]


# A browser's type=url refuses "example.com" before the form is sent; the field itself adds https://.
URL_WITHOUT_SCHEME = forms.TextInput(attrs={"inputmode": "url", "autocomplete": "url", "spellcheck": "false"})


def split_lines(text: str) -> list[str]:
    """References typed in a form, one per line: a URL may hold commas (and `;`), so nothing else splits."""
    return [line.strip() for line in text.splitlines() if line.strip()] if text else []


def split_codes(text: str) -> list[str]:
    """Country codes typed in a form: separated by commas, spaces or lines (codes hold none of them)."""
    return [code.upper() for code in re.split(r"[\s,;]+", text or "") if code]


class OrganizationForm(forms.Form):
    name = forms.CharField(label=_("Organisation name"), max_length=200)
    kind = forms.ChoiceField(
        label=_("Kind"), widget=forms.RadioSelect,
        choices=[
            (Organization.Kind.RIGHTSHOLDER, _("Studio or rightsholder — registers works and grants permission")),
            (Organization.Kind.AI_DEVELOPER,
             _("AI developer — checks content before training and asks for permission")),
        ],
    )
    country = forms.CharField(label=_("Country (ISO code, e.g. JP)"), max_length=2, required=False)
    website = forms.URLField(label=_("Website"), required=False, assume_scheme="https", widget=URL_WITHOUT_SCHEME,
                             help_text=_("example.com is read as https://example.com."))


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)


class WorkForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=500)
    external_ref = forms.CharField(
        label=_("Your reference"), max_length=255,
        help_text=_("Your own catalog number for this work; unique within your organisation."),
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES, initial=Work.Kind.IMAGE)
    parent = forms.ChoiceField(label=_("Part of"), required=False)
    file = forms.FileField(label=_("File"), required=False, help_text=_("An image, video, audio or text file."))
    urls = forms.CharField(
        label=_("URLs"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One per line. Patterns may use * and $, as in robots.txt."),
    )
    identifiers = forms.CharField(
        label=_("Identifiers"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One per line, as scheme:value — e.g. isan:0000-0000-3A8D-0000-Z-0000-0000-6."),
    )
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    year = forms.IntegerField(label=_("Year"), required=False, min_value=1, max_value=9999)
    creators = forms.CharField(label=_("Creators"), required=False, max_length=500)

    def __init__(self, *args, parents: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].choices = [("", _("— none (a top-level work) —")), *parents]


class WorkEditForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=500)
    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES)
    parent = forms.ChoiceField(label=_("Part of"), required=False)
    urls = WorkForm.base_fields["urls"]
    identifiers = WorkForm.base_fields["identifiers"]
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, parents: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].choices = [("", _("— none (a top-level work) —")), *parents]


class WorkWithdrawForm(forms.Form):
    reason = forms.CharField(label=_("Reason (kept in the audit trail)"), required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))


class FileAddForm(forms.Form):
    file = forms.FileField(label=_("File"))


# No organisation slug holds "*": the choice of every verified AI developer cannot name one.
ANY_VERIFIED_DEVELOPER = "*"


class GrantForm(forms.Form):
    scope = forms.ChoiceField(
        label=_("What it covers"), widget=forms.RadioSelect,
        choices=[("work", _("This work and everything under it")),
                 ("catalog", _("Our whole catalog, present and future"))],
        initial="work",
    )
    licensee = forms.ChoiceField(label=_("Who may use it"))
    purposes = forms.MultipleChoiceField(
        label=_("For what"), choices=PURPOSE_CHOICES, widget=forms.CheckboxSelectMultiple,
        help_text=_("A purpose covers every purpose under it: train-ai includes train-genai."),
    )
    territories = forms.CharField(
        label=_("Territories"), required=False,
        help_text=_("ISO country codes separated by commas, e.g. JP, US. Leave empty for worldwide."),
    )
    contexts = forms.MultipleChoiceField(
        label=_("Contexts"), required=False, choices=CONTEXT_CHOICES, widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked for any context."),
    )
    valid_from = forms.DateField(label=_("Valid from"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(
        label=_("Valid until"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The last day the grant is in force. Leave empty for no end date."),
    )
    attribution = forms.CharField(label=_("Attribution"), required=False)
    licence_url = forms.URLField(label=_("Licence URL"), required=False, assume_scheme="https",
                                 widget=URL_WITHOUT_SCHEME)
    compensation = forms.CharField(
        label=_("Compensation terms"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, licensees: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        # Chosen explicitly: nobody licenses every AI developer by leaving a menu alone.
        self.fields["licensee"].choices = [
            ("", _("— choose who may use it —")), (ANY_VERIFIED_DEVELOPER, _("Any verified AI developer")), *licensees]

    def clean_licensee(self) -> str | None:
        """An AI developer's slug, or None for any verified AI developer."""
        licensee = self.cleaned_data["licensee"]
        return None if licensee == ANY_VERIFIED_DEVELOPER else licensee

    def clean_territories(self) -> list[str]:
        return split_codes(self.cleaned_data.get("territories", ""))


class RevokeForm(forms.Form):
    reason = forms.CharField(label=_("Reason (kept in the audit trail)"), required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))


# What a key can do for each kind of organisation: an AI developer checks and disputes, nothing of a catalog.
KEY_SCOPES_BY_KIND = {Organization.Kind.AI_DEVELOPER: ("checks", "disputes")}


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("e.g. “training pipeline”."),
                           widget=forms.TextInput(attrs={"placeholder": _("e.g. training pipeline")}))
    scopes = forms.MultipleChoiceField(
        label=_("What the key may do"), choices=SCOPE_CHOICES, widget=forms.CheckboxSelectMultiple,
        help_text=_("Give a key only what its program needs."),
    )

    def __init__(self, *args, organization_kind: str = Organization.Kind.RIGHTSHOLDER, **kwargs):
        super().__init__(*args, **kwargs)
        usable = KEY_SCOPES_BY_KIND.get(organization_kind, API_KEY_SCOPES)
        self.fields["scopes"].choices = [(s, label) for s, label in SCOPE_CHOICES if s in usable]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(d, initial) for d in data]
        return [super().clean(data, initial)] if data else []


class DisputeForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the dispute is about"), choices=DISPUTE_KIND_CHOICES,
                             widget=forms.RadioSelect, initial="ownership")
    other_work = forms.CharField(
        label=_("The other organisation's work"), max_length=300,
        help_text=_("Its Kyoka work ID, the SHA-256 of its file, or an identifier (scheme:value)."),
    )
    statement = forms.CharField(
        label=_("Statement"), max_length=20_000, widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("What is wrong, and why. The other organisation and Kyoka's reviewers read it."),
    )
    evidence = MultipleFileField(label=_("Evidence files"), required=False,
                                 help_text=_("Up to 10 files of 20 MB each: contracts, sketches, publication records."))


class DisputeCommentForm(forms.Form):
    message = forms.CharField(label=_("Your answer or comment"), max_length=20_000,
                              widget=forms.Textarea(attrs={"rows": 4}))
    evidence = MultipleFileField(label=_("Attach files"), required=False)


class DisputeWithdrawForm(forms.Form):
    reason = forms.CharField(label=_("Why you withdraw (optional)"), required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))


class CheckConsoleForm(forms.Form):
    purpose = forms.ChoiceField(label=_("Purpose"), choices=PURPOSE_CHOICES, initial="train-genai")
    territory = forms.CharField(label=_("Territory"), max_length=2, required=False,
                                help_text=_("ISO code, e.g. JP. Optional."))
    context = forms.ChoiceField(label=_("Context"), choices=CONTEXT_CHOICES, initial="commercial")
    items = forms.CharField(
        label=_("Hashes, URLs or identifiers"), required=False, widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("One per line: a SHA-256, a perceptual hash (16 hex), a URL, or scheme:value."),
    )
    files = MultipleFileField(label=_("Files"), required=False)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("files") and not split_lines(cleaned.get("items", "")):
            raise forms.ValidationError(_("Paste at least one item or drop at least one file."))
        return cleaned


class ReceiptVerifyForm(forms.Form):
    body = forms.CharField(label=_("Receipt body (the JSON, exactly as received)"), required=False,
                           widget=forms.Textarea(attrs={"rows": 6}), strip=False)
    body_file = forms.FileField(label=_("…or the receipt body file"), required=False)
    signature = forms.CharField(label=_("Signature (Receipt-Signature header)"), required=False,
                                widget=forms.Textarea(attrs={"rows": 2}))
    signature_file = forms.FileField(label=_("…or the signature file"), required=False)

    def clean(self):
        cleaned = super().clean()
        body = cleaned.get("body_file").read() if cleaned.get("body_file") else (cleaned.get("body") or "").encode()
        signature = (
            cleaned["signature_file"].read().decode("ascii", "replace") if cleaned.get("signature_file")
            else cleaned.get("signature") or ""
        ).strip()
        if not body or not signature:
            raise forms.ValidationError(_("Give both the receipt body and its signature."))
        cleaned["body_bytes"], cleaned["signature_text"] = body, signature
        cleaned["reformatted"] = body_looks_reformatted(body)
        return cleaned


def body_looks_reformatted(body: bytes) -> bool:
    """JSON that is not byte for byte what Kyoka sends (pretty-printed, re-encoded): the signature cannot hold."""
    try:
        document = json.loads(body)
    except ValueError:
        return False
    compact = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return body.strip() != compact and b"\n" in body.strip()


class PermissionRequestForm(forms.Form):
    rightsholder = forms.ChoiceField(label=_("Studio"))
    work = forms.CharField(required=False, widget=forms.HiddenInput)
    purposes = forms.MultipleChoiceField(label=_("For what"), choices=PURPOSE_CHOICES,
                                         widget=forms.CheckboxSelectMultiple)
    territories = forms.CharField(label=_("Territories"), required=False,
                                  help_text=_("ISO country codes separated by commas. Empty: worldwide."))
    contexts = forms.MultipleChoiceField(label=_("Contexts"), required=False, choices=CONTEXT_CHOICES,
                                         widget=forms.CheckboxSelectMultiple)
    message = forms.CharField(
        label=_("Message to the studio"), required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args, rightsholders: list[tuple[str, str]] = (), about_work: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if about_work:
            # Asked from a check result: the work decides who is asked, nobody picks another studio.
            del self.fields["rightsholder"]
        else:
            self.fields["rightsholder"].choices = [("", _("— choose a studio —")), *rightsholders]

    def clean_territories(self) -> list[str]:
        return split_codes(self.cleaned_data.get("territories", ""))


class AnswerForm(forms.Form):
    response = forms.CharField(label=_("Reply"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class UploadForm(forms.Form):
    manifest = forms.FileField(label=_("Manifest (CSV, JSON or NDJSON)"))
    archive = forms.FileField(label=_("Files (ZIP, optional)"), required=False)


IDENTIFIER_SCHEMES = WorkIdentifier.Scheme.values


class VerificationRequestForm(forms.Form):
    legal_name = forms.CharField(label=_("Legal name"), max_length=300,
                                 help_text=_("As registered, e.g. 株式会社さくらスタジオ."))
    country = forms.CharField(label=_("Country (ISO code, e.g. JP)"), max_length=2, required=False)
    registration_number = forms.CharField(
        label=_("Registration number"), max_length=100, required=False,
        help_text=_("For a Japanese company, its 13-digit corporate number (法人番号)."),
    )
    website = forms.URLField(label=_("Website"), required=False, assume_scheme="https", widget=URL_WITHOUT_SCHEME,
                             help_text=_("example.com is read as https://example.com."))
    contact_email = forms.EmailField(label=_("Contact email for the reviewer"), required=False)
    evidence = MultipleFileField(
        label=_("Evidence files"), required=False,
        help_text=_("Up to 10 PDFs or images of 20 MB each: a registry extract, a contract, a publication record."),
    )

    def clean_country(self) -> str:
        return self.cleaned_data["country"].strip().upper()
