"""Forms of accounts: sign-up, login (portal and admin, one throttle), password reset, invitations.

Every address goes through registry.services.accounts' one normal form; these forms only parse.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext_lazy as _

from portal.login_throttle import login_failed, login_refused, login_succeeded
from registry.exceptions import ValidationFailed
from registry.models import Membership
from registry.services.accounts import email_canonical, email_normalize

ROLE_LABELS = {"owner": _("Owner"), "manager": _("Manager"), "viewer": _("Viewer")}
ROLE_CHOICES = [(r, ROLE_LABELS[r]) for r in Membership.Role.values]


class CanonicalEmailField(forms.CharField):
    """An address in its one normal form; refused when typed with characters that stand for others."""

    widget = forms.EmailInput(attrs={"autocomplete": "email"})

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        try:
            return email_canonical(value)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message, code="email") from exc


def login_username(raw: str) -> str:
    try:
        return email_normalize(raw)
    except ValidationFailed:
        return (raw or "").strip()


class ThrottledLoginMixin:
    """Refuse for a while after too many failures (portal/login_throttle.py); log in on the normal form."""

    def clean(self):
        raw = self.data.get("username", "")
        if login_refused(self.request, raw):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        # Django's backend compares usernames exactly, and addresses are stored in their normal form;
        # a username that is no address (an administrator's "admin") is compared as typed.
        self.cleaned_data["username"] = login_username(raw)
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_failed(self.request, raw)
            raise
        login_succeeded(self.request, raw)
        return cleaned


THROTTLED = _("Too many failed attempts. Please wait a few minutes and try again.")


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That email and password do not match an account."),
        "throttled": THROTTLED,
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = _("Email")
        self.fields["username"].widget.attrs["autocomplete"] = "email"


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    error_messages = {**AdminAuthenticationForm.error_messages, "throttled": THROTTLED}


class SignupForm(forms.Form):
    email = CanonicalEmailField(label=_("Email"))
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not only digits, not a common password."),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("email") and cleaned.get("password"):
            user = get_user_model()(username=cleaned["email"], email=cleaned["email"])
            try:
                password_validation.validate_password(cleaned["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class InvitationSignupForm(forms.Form):
    """The invitee of an address without an account chooses a password; the address is the invitation's."""

    password = SignupForm.base_fields["password"]

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password, get_user_model()(username=self.email, email=self.email))
        return password


class NormalisedPasswordResetForm(PasswordResetForm):
    """Finds the account by the normal form of what was typed; mails only the stored address."""

    def get_users(self, email):
        try:
            address = email_normalize(email)
        except ValidationFailed:
            return []
        return get_user_model()._default_manager.filter(username=address, email=address, is_active=True)


class InviteForm(forms.Form):
    email = CanonicalEmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, initial=Membership.Role.VIEWER)
