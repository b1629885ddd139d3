"""A person's own preferences: the language Kyoka writes them mail in."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from registry.services.accounts import user_set_language


@login_required
@require_POST
def mail_language_set(request: HttpRequest) -> HttpResponse:
    language = request.POST.get("mail_language", "")
    if language in dict(settings.LANGUAGES):
        user_set_language(user=request.user, language=language)
        messages.success(request, _("Mail from Kyoka will be written in the language you chose."))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "web:home"
    return redirect(target)
