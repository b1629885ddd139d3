"""Accounts: sign up and confirm the address, log in (throttled), organisations, members, invitations.

Each state change is one registry service (registry/services/accounts.py); these views only parse
and render. Mail goes out after the commit, through Celery.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.account_forms import (
    ROLE_CHOICES,
    InvitationSignupForm,
    InviteForm,
    LoginForm,
    NormalisedPasswordResetForm,
    SignupForm,
)
from portal.forms import OrganizationForm, RoleForm
from portal.middleware import SESSION_EMAIL_CONFIRMED, SESSION_TIME_ZONE, TIME_ZONES
from portal.views.common import SESSION_ORGANIZATION, add_domain_error, organization_view
from registry.access import Actor
from registry.exceptions import KyokaError, ValidationFailed
from registry.models import Invitation, Membership, Organization
from registry.services.accounts import (
    account_confirm_email,
    account_confirm_email_by_reset,
    account_sign_up,
    email_confirmation_send,
    email_confirmation_user,
    email_confirmed,
    invitation_accept,
    invitation_accept_with_new_account,
    invitation_create,
    invitation_decline,
    invitation_from_token,
    invitation_is_open,
    invitation_revoke,
    user_by_email,
)
from registry.services.organizations import membership_add, organization_create

BACKEND = "django.contrib.auth.backends.ModelBackend"


class LoginView(auth_views.LoginView):
    template_name = "web/accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "web/accounts/password_reset.html"
    form_class = NormalisedPasswordResetForm
    email_template_name = "web/accounts/password_reset_email.txt"
    subject_template_name = "web/accounts/password_reset_subject.txt"
    success_url = reverse_lazy("web:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "web/accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "web/accounts/password_reset_confirm.html"
    success_url = reverse_lazy("web:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        account_confirm_email_by_reset(user=form.user)  # the reset link came to the address
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "web/accounts/password_reset_complete.html"


def signup(request: HttpRequest) -> HttpResponse:
    """One answer whether or not the address has an account: "check your inbox" (the mail says which)."""
    if request.user.is_authenticated:
        return redirect("web:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account_sign_up(email=form.cleaned_data["email"], password=form.cleaned_data["password"],
                            language=get_language() or "")
        except ValidationFailed as exc:
            add_domain_error(form, exc)
        else:
            return redirect("web:signup_sent")
    return render(request, "web/accounts/signup.html", {"form": form})


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "web/accounts/signup_sent.html")


def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the confirmation mail, opened by the account it was made for (logged in).

    Not logged in: log in first (the login page returns here). The mailbox and the password together
    confirm the address; see registry.services.accounts.account_confirm_email.
    """
    try:
        user = email_confirmation_user(token)
    except KyokaError as exc:
        return render(request, "web/accounts/email_confirm_failed.html", {"message": exc.message}, status=404)
    if not request.user.is_authenticated:
        messages.info(request, _("Log in to confirm your address."))
        return redirect_to_login(request.get_full_path(), reverse("web:login"))
    try:
        account_confirm_email(actor=Actor.for_user(request.user), token=token)
    except KyokaError as exc:
        return render(request, "web/accounts/email_confirm_failed.html", {"message": exc.message}, status=403)
    request.session[SESSION_EMAIL_CONFIRMED] = request.user.pk
    messages.success(request, _("Your address %(email)s is confirmed.") % {"email": user.email})
    return redirect("web:home")


@login_required
def email_confirm_pending(request: HttpRequest) -> HttpResponse:
    """What an account with an unconfirmed address sees instead of everything else."""
    if email_confirmed(request.user):
        request.session[SESSION_EMAIL_CONFIRMED] = request.user.pk
        return redirect("web:home")
    if request.method == "POST":
        email_confirmation_send(user=request.user)
        messages.success(request, _("We sent the link again to %(email)s.") % {"email": request.user.email})
        return redirect("web:email_confirm_pending")
    return render(request, "web/accounts/email_confirm_pending.html")


@login_required
def organization_create_view(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            organization = organization_create(
                actor=Actor.for_user(request.user), name=data["name"], kind=data["kind"], owner=request.user,
                country=data["country"].upper(), website=data["website"], contact_email=request.user.email,
            )
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            request.session[SESSION_ORGANIZATION] = organization.slug
            messages.success(request, _(
                "%(name)s is created. A reviewer will verify it; until then its grants and checks do not count."
            ) % {"name": organization.name})
            return redirect("web:home")
    return render(request, "web/accounts/organization_create.html", {"form": form})


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("organization", "")
    if not Membership.objects.filter(user=request.user, organization__slug=slug).exists():
        raise Http404("Not one of your organisations.")
    request.session[SESSION_ORGANIZATION] = slug
    return redirect("web:home")


@organization_view()
def members(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    is_owner = actor.role_in(organization) == Membership.Role.OWNER
    invitations = (
        Invitation.objects.pending(at=timezone.now()).filter(organization=organization).order_by("email")
        if is_owner else Invitation.objects.none()
    )
    return render(request, "web/accounts/members.html", {
        "members": organization.memberships.select_related("user").order_by("user__email"),
        "invite_form": InviteForm(), "role_form": RoleForm(), "is_owner": is_owner,
        "invitations": invitations, "role_labels": dict(ROLE_CHOICES),
    })


@organization_view(role=Membership.Role.OWNER)
@require_POST
def member_invite(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    """The same answer whether or not the address has an account: the invitation waits for its answer."""
    form = InviteForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("web:members")
    email = form.cleaned_data["email"]
    try:
        invitation_create(actor=actor, organization=organization, email=email, role=form.cleaned_data["role"])
    except KyokaError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _(
            "Invitation sent to %(email)s. It joins nobody until they accept it."
        ) % {"email": email})
    return redirect("web:members")


@organization_view(role=Membership.Role.OWNER)
@require_POST
def invitation_revoke_view(request: HttpRequest, invitation_id: str, *, organization: Organization,
                           actor: Actor) -> HttpResponse:
    invitation = organization.invitations.filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    try:
        invitation_revoke(actor=actor, invitation=invitation)
    except KyokaError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Invitation withdrawn."))
    return redirect("web:members")


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The invitee's page: accept or decline when signed in with the invited address; otherwise log
    in with it, or (no account has it) choose a password, which accepts and makes the account."""
    try:
        offer = invitation_from_token(token)
    except KyokaError as exc:
        return render(request, "web/accounts/invitation.html", {"message": exc.message}, status=404)
    context = {"invitation": offer, "open": invitation_is_open(offer), "role_labels": dict(ROLE_CHOICES)}
    user = request.user if request.user.is_authenticated else None
    if user is not None:
        context["for_me"] = user.get_username() == offer.email
    else:
        context["has_account"] = user_by_email(offer.email) is not None
        context["login_url"] = f"{reverse('web:login')}?next={request.path}"
    form = InvitationSignupForm(request.POST or None, email=offer.email)
    context["form"] = form
    if request.method == "POST" and context["open"]:
        answer = request.POST.get("answer", "")
        try:
            if user is not None and answer == "accept":
                membership = invitation_accept(actor=Actor.for_user(user), invitation=offer)
                request.session[SESSION_ORGANIZATION] = membership.organization.slug
                messages.success(request, _("You joined %(org)s.") % {"org": offer.organization.name})
                return redirect("web:home")
            if user is not None and answer == "decline":
                invitation_decline(actor=Actor.for_user(user), invitation=offer)
                messages.success(request, _("Invitation declined."))
                return redirect("web:home")
            if user is None and not context["has_account"] and form.is_valid():
                new_user = invitation_accept_with_new_account(
                    token=token, password=form.cleaned_data["password"], language=get_language() or "",
                )
                login(request, new_user, backend=BACKEND)
                request.session[SESSION_ORGANIZATION] = offer.organization.slug
                messages.success(request, _("You joined %(org)s.") % {"org": offer.organization.name})
                return redirect("web:home")
        except KyokaError as exc:
            messages.error(request, exc.message)
            return redirect(request.path)
    return render(request, "web/accounts/invitation.html", context)


@organization_view(role=Membership.Role.OWNER)
@require_POST
def member_role(request: HttpRequest, membership_id: int, *, organization: Organization, actor: Actor) -> HttpResponse:
    membership = organization.memberships.select_related("user").filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member.")
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            membership_add(actor=actor, organization=organization, user=membership.user, role=form.cleaned_data["role"])
        except KyokaError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Role changed."))
    return redirect("web:members")


@require_POST
def time_zone_set(request: HttpRequest) -> HttpResponse:
    """Remember the time zone times are shown in, for this session (storage stays UTC)."""
    chosen = request.POST.get("time_zone", "")
    if chosen in TIME_ZONES:
        request.session[SESSION_TIME_ZONE] = chosen
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = "/"
    return redirect(next_url)
