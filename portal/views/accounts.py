"""Accounts: sign up, log in (throttled), organisations, members and their roles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_encode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.forms import InviteForm, OrganizationForm, RoleForm, SignupForm, ThrottledLoginForm
from portal.middleware import SESSION_TIME_ZONE, TIME_ZONES
from portal.views.common import SESSION_ORGANIZATION, add_domain_error, organization_view
from registry.exceptions import KyokaError
from registry.models import Membership, Organization
from registry.access import Actor
from registry.services.organizations import membership_add, organization_create


class LoginView(auth_views.LoginView):
    template_name = "web/accounts/login.html"
    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "web/accounts/password_reset.html"
    email_template_name = "web/accounts/password_reset_email.txt"
    subject_template_name = "web/accounts/password_reset_subject.txt"
    success_url = reverse_lazy("web:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "web/accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "web/accounts/password_reset_confirm.html"
    success_url = reverse_lazy("web:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "web/accounts/password_reset_complete.html"


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("web:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        user = get_user_model().objects.create_user(username=email, email=email, password=form.cleaned_data["password"])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("web:organization_create")
    return render(request, "web/accounts/signup.html", {"form": form})


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
    invite_form = InviteForm()
    return render(request, "web/accounts/members.html", {
        "members": organization.memberships.select_related("user").order_by("user__email"),
        "invite_form": invite_form, "role_form": RoleForm(),
        "is_owner": actor.role_in(organization) == Membership.Role.OWNER,
    })


@organization_view(role=Membership.Role.OWNER)
@require_POST
def member_invite(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        User = get_user_model()
        user = User.objects.filter(username__iexact=email).first()
        created = user is None
        if created:
            # The invitee chooses a password through the reset link the invitation carries.
            user = User.objects.create_user(username=email, email=email, password=None)
        try:
            membership_add(actor=actor, organization=organization, user=user, role=form.cleaned_data["role"])
        except KyokaError as exc:
            messages.error(request, exc.message)
            return redirect("web:members")
        _send_invitation(request, user=user, organization=organization, new_account=created)
        messages.success(request, _("Invitation sent to %(email)s.") % {"email": email})
    else:
        messages.error(request, _("Give a valid email address and role."))
    return redirect("web:members")


def _send_invitation(request: HttpRequest, *, user, organization: Organization, new_account: bool) -> None:
    """Email the invitee; a new account's link lets them choose a password (Django's reset token)."""
    context = {
        "organization": organization, "inviter": request.user, "new_account": new_account,
        "protocol": "https" if request.is_secure() else "http", "domain": request.get_host(),
        "uid": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user),
    }
    subject = "".join(render_to_string("web/accounts/invitation_subject.txt", context).splitlines())
    body = render_to_string("web/accounts/invitation_email.txt", context)
    send_mail(subject, body, None, [user.email])


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
