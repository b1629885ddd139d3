"""Permission requests: a developer asks, the rightsholder accepts (issuing the grant) or declines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registry.access import Actor
from registry.exceptions import InvalidTransition, PermissionDenied, ValidationFailed
from registry.models import AuditEvent, Grant, Organization, PermissionRequest
from registry.services.api_keys import do_api_key_create
from registry.services.permission_requests import (
    do_permission_request_accept,
    do_permission_request_create,
    do_permission_request_decline,
    permission_request_accept,
    permission_request_create,
    permission_request_decline,
)
from registry.services.works import do_work_register, do_work_withdraw
from tests.conftest import OPERATOR, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def work(studio):
    return do_work_register(acting=OPERATOR, organization=studio, external_ref="S-1", title="Series 1",
        kind="collection")


def ask(requester, rightsholder, actor=None, **terms) -> PermissionRequest:
    terms.setdefault("purposes", ["train-genai"])
    return permission_request_create(actor=actor or Actor.for_user(owner_of(requester)), requester=requester,
        rightsholder=rightsholder, **terms)


# --- asking -----------------------------------------------------------------------------------


def test_a_developer_asks_and_the_request_is_recorded_pending(developer, studio, work):
    actor = Actor.for_user(owner_of(developer))
    request = ask(developer, studio, actor, work=work, territories=["JP", "US"], contexts=["research"],
                  purposes=["train-genai", "train-genai", "search"], message="For our research model")
    request.refresh_from_db()
    assert (request.status, request.requester, request.rightsholder, request.work) == (
        "pending", developer, studio, work
    )
    assert (request.purposes, request.territories, request.contexts) == (
        ["search", "train-genai"], ["JP", "US"], ["research"]
    )
    assert (request.created_by, request.grant, request.decided_at) == (owner_of(developer), None, None)
    event = AuditEvent.objects.get(action="permission_request.create")
    assert (event.object_id, event.organization, event.data["rightsholder"]) == (
        str(request.pk), developer.slug, studio.slug
    )


def test_asking_permits_nothing(developer, studio, work):
    ask(developer, studio, work=work)
    assert not Grant.objects.exists()


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("manager", True), ("owner", True)])
def test_asking_needs_a_manager_of_the_developer(developer, studio, member, role, allowed):
    actor = member(developer, role)
    if allowed:
        assert ask(developer, studio, actor).status == "pending"
    else:
        with pytest.raises(PermissionDenied):
            ask(developer, studio, actor)
        assert not PermissionRequest.objects.exists()


def test_a_key_asks_with_the_checks_scope_only(developer, studio):
    with_scope, _ = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    without, _ = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["works:read"])
    assert ask(developer, studio, Actor.for_key(with_scope)).status == "pending"
    with pytest.raises(PermissionDenied):
        ask(developer, studio, Actor.for_key(without))


def test_no_one_asks_on_behalf_of_another_developer(developer, studio, make_org):
    other = make_org(Organization.Kind.AI_DEVELOPER)
    with pytest.raises(PermissionDenied):
        ask(developer, studio, Actor.for_user(owner_of(other)))


@pytest.mark.parametrize("terms,field", [
    ({"purposes": []}, "purposes"),
    ({"purposes": ["train-everything"]}, "purposes"),
    ({"territories": ["XX"]}, "territories"),
    ({"contexts": ["military"]}, "contexts"),
])
def test_invalid_terms_are_refused(developer, studio, terms, field):
    with pytest.raises(ValidationFailed) as raised:
        ask(developer, studio, **terms)
    assert field in raised.value.fields


def test_permission_is_asked_of_a_rightsholder_by_a_developer(developer, studio, make_org):
    with pytest.raises(ValidationFailed) as raised:
        ask(developer, make_org(Organization.Kind.AI_DEVELOPER))
    assert list(raised.value.fields) == ["rightsholder"]
    with pytest.raises(ValidationFailed):
        ask(make_org(Organization.Kind.RIGHTSHOLDER), studio)


def test_the_work_must_be_the_rightsholders_and_active(developer, studio, make_org, work):
    other_studio = make_org()
    with pytest.raises(ValidationFailed) as raised:
        ask(developer, other_studio, work=work)
    assert list(raised.value.fields) == ["work"]
    withdrawn = do_work_withdraw(acting=OPERATOR, work=work)
    with pytest.raises(ValidationFailed) as raised:
        ask(developer, studio, work=withdrawn)
    assert raised.value.fields == {"work": ["This work is withdrawn."]}


# --- answering --------------------------------------------------------------------------------


def test_accepting_issues_the_requested_grant_to_the_requester(developer, studio, work):
    request = ask(developer, studio, work=work, territories=["JP"], contexts=["commercial"])
    manager = Actor.for_user(owner_of(studio))
    accepted = permission_request_accept(actor=manager, permission_request=request, response="Welcome")
    grant = accepted.grant
    assert (grant.grantor, grant.licensee, grant.scope, grant.work) == (studio, developer, "work", work)
    assert (grant.purposes, grant.territories, grant.contexts, grant.valid_until) == (
        ["train-genai"], ["JP"], ["commercial"], None
    )
    assert grant.issued_by == owner_of(studio)
    request.refresh_from_db()
    assert (request.status, request.grant, request.response, request.decided_by) == (
        "accepted", grant, "Welcome", owner_of(studio)
    )
    assert request.decided_at is not None
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["grant.issue", "permission_request.accepted"]


def test_a_request_for_the_catalog_is_granted_on_the_catalog(developer, studio):
    grant = do_permission_request_accept(acting=OPERATOR, permission_request=ask(developer, studio)).grant
    assert (grant.scope, grant.work) == ("catalog", None)


def test_the_rightsholder_may_grant_other_terms(developer, studio, work):
    request = ask(developer, studio, work=work, purposes=["all"])
    until = timezone.now() + timedelta(days=365)
    grant = do_permission_request_accept(
        acting=OPERATOR, permission_request=request, purposes=["train-ai"], territories=["JP"], valid_until=until,
        attribution="© Studio Aozora", scope="catalog",
    ).grant
    assert (grant.scope, grant.work, grant.purposes, grant.territories) == ("catalog", None, ["train-ai"], ["JP"])
    assert (grant.valid_until, grant.attribution, grant.licensee) == (until, "© Studio Aozora", developer)


def test_accepting_with_invalid_terms_changes_nothing(developer, studio, work):
    request = ask(developer, studio, work=work)
    events_before = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as raised:
        do_permission_request_accept(acting=OPERATOR, permission_request=request, territories=["XX"])
    assert "territories" in raised.value.fields
    request.refresh_from_db()
    assert (request.status, request.grant, request.decided_at) == ("pending", None, None)
    assert not Grant.objects.exists() and AuditEvent.objects.count() == events_before


def test_a_grant_cannot_be_made_on_another_organisations_work(developer, studio, make_org):
    other_studio = make_org()
    foreign = do_work_register(acting=OPERATOR, organization=other_studio, external_ref="X", title="X")
    with pytest.raises(ValidationFailed):
        do_permission_request_accept(acting=OPERATOR, permission_request=ask(developer, studio), work=foreign)
    assert not Grant.objects.exists()


def test_declining_grants_nothing(developer, studio, member):
    request = ask(developer, studio)
    declined = permission_request_decline(actor=member(studio, "manager"), permission_request=request,
                                          response="Not at this time")
    request.refresh_from_db()
    assert (declined.status, request.status, request.grant, request.response) == (
        "declined", "declined", None, "Not at this time"
    )
    assert not Grant.objects.exists()
    assert AuditEvent.objects.filter(action="permission_request.declined", object_id=str(request.pk)).exists()


@pytest.mark.parametrize("answer", [permission_request_accept, permission_request_decline])
@pytest.mark.parametrize("role,allowed", [("viewer", False), ("manager", True), ("owner", True)])
def test_answering_needs_a_manager_of_the_rightsholder(developer, studio, member, answer, role, allowed):
    request = ask(developer, studio)
    actor = member(studio, role)
    if allowed:
        assert answer(actor=actor, permission_request=request).status in ("accepted", "declined")
    else:
        with pytest.raises(PermissionDenied):
            answer(actor=actor, permission_request=request)
        request.refresh_from_db()
        assert request.status == "pending"


@pytest.mark.parametrize("answer", [permission_request_accept, permission_request_decline])
def test_the_requester_cannot_answer_its_own_request(developer, studio, answer):
    request = ask(developer, studio)
    key, _ = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks", "grants:write"])
    for actor in (Actor.for_user(owner_of(developer)), Actor.for_key(key)):
        with pytest.raises(PermissionDenied):
            answer(actor=actor, permission_request=request)
    request.refresh_from_db()
    assert request.status == "pending"


@pytest.mark.parametrize("first", [permission_request_accept, permission_request_decline])
@pytest.mark.parametrize("second", [permission_request_accept, permission_request_decline])
def test_a_request_is_answered_once(developer, studio, first, second):
    request = ask(developer, studio)
    answering = Actor.for_user(owner_of(studio))
    first(actor=answering, permission_request=request)
    grants = Grant.objects.count()
    with pytest.raises(InvalidTransition):
        second(actor=answering, permission_request=request)
    assert Grant.objects.count() == grants


def test_the_studio_is_emailed_a_request_and_the_developer_its_answer(
    studio, developer, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        request = do_permission_request_create(
            acting=OPERATOR, requester=developer, rightsholder=studio, purposes=["train-ai"], message="Please"
        )
    assert [m.to for m in mailoutbox] == [[owner_of(studio).email]]
    with django_capture_on_commit_callbacks(execute=True):
        do_permission_request_decline(acting=OPERATOR, permission_request=request, response="Not now")
    assert mailoutbox[-1].to == [owner_of(developer).email]
