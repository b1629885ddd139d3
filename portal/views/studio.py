"""Studio (rightsholder) pages: catalog, works, grants, activity, permission requests.

Over 400 lines only because it holds some twenty thin views, each a form and one service call.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.forms import (
    KIND_CHOICES,
    AnswerForm,
    FileAddForm,
    GrantForm,
    RevokeForm,
    WorkEditForm,
    WorkForm,
    WorkWithdrawForm,
    split_lines,
)
from portal.views.common import (
    add_domain_error,
    csv_download,
    csv_line,
    current_membership,
    natural,
    organization_view,
)
from portal.views.wording import grant_effect
from registry.access import ROLE_RANK, Actor
from registry.exceptions import KyokaError, NotFound
from registry.models import Dispute, Grant, Membership, Organization, PermissionRequest, Work
from registry.selectors.activity import (
    ActivityWindow,
    work_access_daily_counts,
    work_access_list,
    work_access_top_requesters,
)
from registry.selectors.disputes import disputes_of_party
from registry.selectors.grants import grant_get, grant_list, grants_covering_work
from registry.selectors.organizations import organization_named
from registry.selectors.permission_requests import permission_request_get, permission_request_list
from registry.selectors.snapshots import grant_snapshots_valid_until, licence_snapshot_downloads
from registry.selectors.works import work_get, work_list
from registry.services.grants import grant_issue, grant_revoke
from registry.services.permission_requests import permission_request_accept, permission_request_decline
from registry.services.works import content_file_add, work_register, work_update, work_withdraw

RIGHTSHOLDER = Organization.Kind.RIGHTSHOLDER
PAGE_SIZE = 24
# Image types a browser may show inline; anything else is downloaded, never rendered.
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
studio_view = organization_view(kind=RIGHTSHOLDER)
studio_manager_view = organization_view(kind=RIGHTSHOLDER, role=Membership.Role.MANAGER)


def _window(organization: Organization, *, days: int, work: Work | None = None) -> ActivityWindow:
    until = timezone.now()
    start = (until - timedelta(days=days - 1)).astimezone(UTC).date()
    return ActivityWindow(
        organization=organization, since=datetime.combine(start, time.min, tzinfo=UTC), until=until,
        work=work.pk if work else None,
    )


def _grant_rows(grants) -> list[dict]:
    now = timezone.now()
    return [{"grant": g, "state": g.state_at(now), "effect": describe_grant(g)} for g in grants]


def describe_grant(grant: Grant) -> str:
    # valid_until is the first moment the grant no longer holds; people read the last day it does.
    last_day = grant.valid_until - timedelta(microseconds=1) if grant.valid_until else None
    return grant_effect(
        grantor_name=grant.grantor.name, licensee_name=grant.licensee.name if grant.licensee else None,
        scope=grant.scope, work_title=grant.work.title if grant.work else None, purposes=grant.purposes,
        territories=grant.territories, contexts=grant.contexts, valid_from=grant.valid_from, valid_until=last_day,
    )


@studio_view
def dashboard(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    works = work_list(organization=organization)
    now = timezone.now()
    window = _window(organization, days=30)
    return render(request, "web/studio/dashboard.html", {
        "work_count": works.filter(status=Work.Status.ACTIVE).count(),
        "recent_works": works.order_by("-created_at")[:5],
        "grant_count": grant_list(organization=organization, in_force=True, at=now)
        .filter(grantor=organization).count(),
        "recent_accesses": work_access_list(window=window)[:10],
        "pending_requests": permission_request_list(
            organization=organization, status=PermissionRequest.Status.PENDING,
        ).filter(rightsholder=organization).count(),
        "open_disputes": _open_disputes(actor, organization),
        "days": _chart(work_access_daily_counts(window=_window(organization, days=14))),
    })


def _open_disputes(actor: Actor, organization: Organization) -> list[Dispute]:
    return list(disputes_of_party(actor=actor, organization=organization, status="open")[:5])


@studio_view
def catalog(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    identifier = request.GET.get("identifier", "").strip()
    works = work_list(
        organization=organization, q=q or None, kind=kind if kind in Work.Kind.values else None,
        status=status if status in Work.Status.values else None, identifier=identifier or None,
    ).order_by(natural("title"), natural("external_ref"))
    if request.GET.get("export") == "csv":
        return _catalog_csv(organization, works)
    page = Paginator(works, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/studio/catalog.html", {
        "page": page, "q": q, "kind": kind, "status": status, "identifier": identifier,
        "kinds": KIND_CHOICES, "query": query.urlencode(), "granted": _granted(organization, page.object_list),
    })


def _granted(organization: Organization, works) -> set:
    """Which of these works a grant in force reaches: on the work, on a work above it, or on the catalog."""
    in_force = Grant.objects.in_force(at=timezone.now()).filter(grantor=organization)
    if in_force.filter(scope=Grant.Scope.CATALOG).exists():
        return {w.pk for w in works}
    reached = set(in_force.filter(work_id__in={pk for w in works for pk in (w.pk, *w.ancestor_ids)})
                  .values_list("work_id", flat=True))
    return {w.pk for w in works if reached & {w.pk, *w.ancestor_ids}}


CATALOG_COLUMNS = ("external_ref", "title", "kind", "status", "parent_ref", "identifiers", "urls", "created_at")


def _catalog_csv(organization: Organization, works) -> StreamingHttpResponse:
    """The catalog as a manifest-shaped CSV (the same columns and `;` lists a bulk upload reads)."""
    parents = dict(work_list(organization=organization).values_list("pk", "external_ref"))

    def lines():
        yield "\ufeff" + csv_line(CATALOG_COLUMNS)
        for w in works.iterator(chunk_size=500):
            yield csv_line((
                w.external_ref, w.title, w.kind, w.status, parents.get(w.parent_id, ""),
                ";".join(f"{i.scheme}:{i.value}" for i in w.identifiers.all()),
                ";".join(u.url for u in w.urls.all()), w.created_at.isoformat(),
            ))

    return csv_download(lines(), f"kyoka-catalog-{organization.slug}.csv")


@studio_view
def work_detail(request: HttpRequest, work_id: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    work = work_get(organization=organization, work_id=work_id)
    ancestors = {w.pk: w for w in work_list(organization=organization).filter(pk__in=work.ancestor_ids)}
    return render(request, "web/studio/work_detail.html", {
        "work": work,
        "ancestors": [ancestors[pk] for pk in work.ancestor_ids if pk in ancestors],
        "children": work.children.order_by("title")[:50],
        "grants": _grant_rows(grants_covering_work(work)),
        "accesses": work_access_list(window=_window(organization, days=90, work=work))[:20],
        "file_form": FileAddForm(),
        "can_manage": _can_manage(request),
        "open_disputes": _open_disputes_of(work),
    })


def _open_disputes_of(work: Work) -> list[dict]:
    """The open disputes a work is in, the other party, and whether the dispute freezes this work."""
    links = work.dispute_links.filter(dispute__status__in=Dispute.OPEN_STATUSES).select_related(
        "dispute__claimant", "dispute__respondent").order_by("-dispute__created_at")
    return [{
        "dispute": link.dispute, "freezes": link.freezes,
        "other": link.dispute.respondent if link.dispute.claimant_id == work.owner_id else link.dispute.claimant,
    } for link in links]


def _can_manage(request: HttpRequest) -> bool:
    membership = current_membership(request)
    return membership is not None and ROLE_RANK[membership.role] >= ROLE_RANK[Membership.Role.MANAGER]


@studio_manager_view
def work_edit(request: HttpRequest, work_id: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    work = work_get(organization=organization, work_id=work_id)
    # A work cannot sit under itself or under anything below it; the service refuses that too.
    parents = [(pk, label) for pk, label in _parent_choices(organization) if pk != str(work.pk)]
    initial = {
        "title": work.title, "kind": work.kind, "description": work.description,
        "parent": str(work.parent_id or ""),
        "urls": "\n".join(u.url for u in work.urls.all()),
        "identifiers": "\n".join(f"{i.scheme}:{i.value}" for i in work.identifiers.all()),
    }
    form = WorkEditForm(request.POST or None, parents=parents, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            parent = work_get(organization=organization, work_id=data["parent"]) if data["parent"] else None
            work_update(
                actor=actor, work=work, title=data["title"], kind=data["kind"], description=data["description"],
                parent=parent, urls=split_lines(data["urls"]), identifiers=split_lines(data["identifiers"]),
            )
        except (KyokaError, NotFound) as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, _("Changes saved."))
            _tell_of_conflicts(request, work)
            return redirect("web:work_detail", work_id=work.pk)
    return render(request, "web/studio/work_edit.html", {"form": form, "work": work})


@studio_manager_view
def work_withdraw_view(request: HttpRequest, work_id: str, *, organization: Organization,
                       actor: Actor) -> HttpResponse:
    work = work_get(organization=organization, work_id=work_id)
    form = WorkWithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            work_withdraw(actor=actor, work=work, reason=form.cleaned_data["reason"])
        except KyokaError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("“%(title)s” is withdrawn. From now on, checks of it answer not permitted.")
                             % {"title": work.title})
        return redirect("web:work_detail", work_id=work.pk)
    return render(request, "web/studio/work_withdraw.html", {"form": form, "work": work})


@studio_view
def work_file(request: HttpRequest, work_id: str, file_id: int, *, organization: Organization,
              actor: Actor) -> HttpResponse:
    work = work_get(organization=organization, work_id=work_id)
    content_file = next((f for f in work.files.all() if f.pk == file_id), None)
    if content_file is None or not content_file.file:
        raise Http404("No such file.")
    inline = content_file.media_type in INLINE_IMAGE_TYPES
    response = FileResponse(
        content_file.file.open("rb"), as_attachment=not inline,
        filename=content_file.original_name or content_file.sha256,
        content_type=content_file.media_type if inline else "application/octet-stream",
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _parent_choices(organization: Organization) -> list[tuple[str, str]]:
    works = work_list(organization=organization, status=Work.Status.ACTIVE).exclude(
        kind__in=[Work.Kind.IMAGE, Work.Kind.AUDIO]).order_by("title")[:500]
    return [(str(w.pk), f"{w.title} ({w.external_ref})") for w in works]


@studio_manager_view
def work_register_view(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    parents = _parent_choices(organization)
    form = WorkForm(request.POST or None, request.FILES or None, parents=parents,
                    initial={"parent": request.GET.get("parent", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            parent = work_get(organization=organization, work_id=data["parent"]) if data["parent"] else None
            work = work_register(
                actor=actor, organization=organization, external_ref=data["external_ref"], title=data["title"],
                kind=data["kind"], parent=parent, urls=split_lines(data["urls"]),
                identifiers=split_lines(data["identifiers"]), description=data["description"],
                year=data["year"], creators=data["creators"],
            )
        except (KyokaError, NotFound) as exc:
            add_domain_error(form, exc)
        else:
            if data["file"]:
                try:
                    content_file_add(actor=actor, work=work, fileobj=data["file"], filename=data["file"].name)
                except KyokaError as exc:
                    messages.warning(request, _("The work is registered, but its file was refused: %(error)s") % {
                        "error": exc.message})
            messages.success(request, _("“%(title)s” is registered.") % {"title": work.title})
            _tell_of_conflicts(request, work)
            return redirect("web:work_detail", work_id=work.pk)
    return render(request, "web/studio/work_register.html", {"form": form})


def _tell_of_conflicts(request: HttpRequest, work: Work) -> None:
    """A registration that matches another studio's opened a dispute: say so at once, on the same page."""
    for conflict in _open_disputes_of(work):
        messages.warning(request, _(
            "This registration matches a work of %(other)s, so Kyoka opened a dispute. Both studios are told; "
            "reviewers decide who owns it."
        ) % {"other": conflict["other"].name})


@studio_manager_view
@require_POST
def work_file_add(request: HttpRequest, work_id: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    work = work_get(organization=organization, work_id=work_id)
    form = FileAddForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            content_file_add(actor=actor, work=work, fileobj=upload, filename=upload.name)
        except KyokaError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("File added."))
            _tell_of_conflicts(request, work)
    return redirect("web:work_detail", work_id=work.pk)


def _licensee_choices() -> list[tuple[str, str]]:
    developers = Organization.objects.filter(kind=Organization.Kind.AI_DEVELOPER).order_by("name")
    return [(o.slug, o.name) for o in developers]


def _end_of_day(day) -> datetime | None:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) if day else None


def _start_of_day(day) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


@studio_manager_view
def grant_create(request: HttpRequest, work_id: str | None = None, *, organization: Organization,
                 actor: Actor) -> HttpResponse:
    """Fill in the grant, read what it will allow in plain words, then issue it."""
    work = work_get(organization=organization, work_id=work_id) if work_id else None
    licensees = _licensee_choices()
    initial = {"scope": "work" if work else "catalog", "purposes": ["train-genai"]}
    form = GrantForm(request.POST or None, licensees=licensees, initial=initial)
    if work is None:
        form.fields["scope"].choices = [c for c in form.fields["scope"].choices if c[0] == "catalog"]
    effect = None
    licensee = None
    if request.method == "POST" and form.is_valid():
        try:
            licensee = organization_named(
                form.cleaned_data["licensee"], field="licensee", kind=Organization.Kind.AI_DEVELOPER)
        except KyokaError as exc:  # the developer went away since the form was drawn
            add_domain_error(form, exc)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        scope = data["scope"] if work else Grant.Scope.CATALOG
        effect = grant_effect(
            grantor_name=organization.name, licensee_name=licensee.name if licensee else None, scope=scope,
            work_title=work.title if work else None, purposes=data["purposes"], territories=data["territories"],
            contexts=data["contexts"], valid_from=_start_of_day(data["valid_from"]), valid_until=(
                _start_of_day(data["valid_until"])),
        )
        if request.htmx and not data["confirmed"]:
            return render(request, "web/studio/_grant_effect.html", {"effect": effect})
        if data["confirmed"] and "issue" in request.POST:
            try:
                grant_issue(
                    actor=actor, grantor=organization, scope=scope, work=work if scope == Grant.Scope.WORK else None,
                    licensee=licensee, purposes=data["purposes"], territories=data["territories"],
                    contexts=data["contexts"], valid_from=_start_of_day(data["valid_from"]),
                    valid_until=_end_of_day(data["valid_until"]), attribution=data["attribution"],
                    licence_url=data["licence_url"], compensation=data["compensation"],
                )
            except KyokaError as exc:
                add_domain_error(form, exc)
            else:
                messages.success(request, _("Grant issued. %(effect)s") % {"effect": effect})
                return redirect("web:work_detail", work_id=work.pk) if work else redirect("web:grants")
        else:
            # First submission (or an edit): show the effect in plain words and ask to confirm.
            return render(request, "web/studio/grant_form.html",
                          {"form": form, "work": work, "effect": effect, "confirming": True})
    elif request.htmx and request.method == "POST":
        return render(request, "web/studio/_grant_effect.html", {"effect": None, "incomplete": True})
    return render(request, "web/studio/grant_form.html", {"form": form, "work": work, "effect": effect})


@studio_view
def grants(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    issued = grant_list(organization=organization).filter(grantor=organization).select_related(
        "work").order_by("-created_at")
    page = Paginator(issued, 50).get_page(request.GET.get("page"))
    return render(request, "web/studio/grants.html", {"page": page, "rows": _grant_rows(page.object_list)})


@studio_manager_view
def grant_revoke_view(request: HttpRequest, grant_id: str, *, organization: Organization,
                      actor: Actor) -> HttpResponse:
    grant = grant_get(organization=organization, grant_id=grant_id)
    if grant.grantor_id != organization.pk:
        raise Http404("No such grant.")
    form = RevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            grant_revoke(actor=actor, grant=grant, reason=form.cleaned_data["reason"])
        except KyokaError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Grant revoked. Checks made from now on no longer count it; "
                                        "receipts issued earlier stay valid."))
        return redirect("web:work_detail", work_id=grant.work_id) if grant.work_id else redirect("web:grants")
    return render(request, "web/studio/grant_revoke.html", {
        "grant": grant, "effect": describe_grant(grant), "form": form,
        "state": grant.state_at(timezone.now()),
        "snapshots_until": grant_snapshots_valid_until(grant=grant, at=timezone.now()),
    })


def _chart(days: list[dict], *, width: int = 640, height: int = 180) -> dict:
    """Stacked bars (permitted / not permitted / disputed) per day, laid out for an inline SVG."""
    peak = max((d["total"] for d in days), default=0)
    top = peak or 1  # the scale; an empty period still draws its axis
    slot = width / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        y = height
        segments = []
        for decision in ("permitted", "not_permitted", "disputed"):
            h = day[decision] / top * (height - 10)
            y -= h
            if h:
                segments.append({"decision": decision, "y": round(y, 1), "height": round(h, 1), "count": day[decision]})
        bars.append({"x": round(i * slot + slot * 0.15, 1), "width": round(slot * 0.7, 1), "segments": segments,
                     "date": day["date"], "total": day["total"]})
    return {"bars": bars, "width": width, "height": height, "max": peak, "days": days}


@studio_view
def activity(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    try:
        days = max(1, min(int(request.GET.get("days", 30)), 365))
    except ValueError:
        days = 30
    window = _window(organization, days=days)
    if request.GET.get("export") == "csv":
        return csv_download(_activity_lines(work_access_list(window=window)),
                            f"kyoka-activity-{organization.slug}-{days}d.csv")
    page = Paginator(work_access_list(window=window), 50).get_page(request.GET.get("page"))
    return render(request, "web/studio/activity.html", {
        "days_choice": days, "chart": _chart(work_access_daily_counts(window=window)),
        "top": work_access_top_requesters(window=window), "page": page,
        "snapshots": licence_snapshot_downloads(organization=organization, since=window.since, until=window.until),
    })


ACTIVITY_COLUMNS = ("checked_at", "requester", "work_external_ref", "work_title", "purpose", "decision")


def _activity_lines(accesses):
    yield "\ufeff" + csv_line(ACTIVITY_COLUMNS)
    for a in accesses.iterator(chunk_size=1000):
        yield csv_line((a.checked_at.isoformat(), a.requester.slug, a.work.external_ref, a.work.title, a.purpose,
                        a.decision))


@studio_view
def requests_inbox(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    status = request.GET.get("status", PermissionRequest.Status.PENDING)
    received = permission_request_list(
        organization=organization, status=status if status in PermissionRequest.Status.values else None,
    ).filter(rightsholder=organization).select_related("work").order_by("-created_at")
    return render(request, "web/studio/requests.html", {
        "requests": received[:100], "status": status, "answer_form": AnswerForm(),
        "statuses": PermissionRequest.Status.choices,
    })


@studio_manager_view
@require_POST
def request_answer(request: HttpRequest, request_id: str, *, organization: Organization,
                   actor: Actor) -> HttpResponse:
    permission_request = permission_request_get(organization=organization, request_id=request_id)
    if permission_request.rightsholder_id != organization.pk:
        raise Http404("No such permission request.")
    form = AnswerForm(request.POST)
    response = form.cleaned_data["response"] if form.is_valid() else ""
    try:
        if request.POST.get("answer") == "accept":
            permission_request_accept(actor=actor, permission_request=permission_request, response=response)
            messages.success(request, _("Accepted: the grant is issued."))
        else:
            permission_request_decline(actor=actor, permission_request=permission_request, response=response)
            messages.success(request, _("Declined."))
    except KyokaError as exc:
        messages.error(request, exc.message)
    return redirect("web:requests_inbox")


