"""The authorisation matrix: every API endpoint and portal page, called by every kind of caller.

The routes come from the URL resolver, so a new endpoint without a row here fails the test.
Each row says who may use the route; each caller's answer is classified as

- ALLOW: past authorisation (2xx, a redirect that is not to the login or organisation page,
  or a 400/405/409/422 about the request itself),
- LOGIN: not signed in (401, or a redirect to the login page),
- REFUSE: signed in but not allowed (403, or 404 for what is not theirs to see, or a portal
  redirect to "create an organisation" for someone with none),

and must be what the row's rule expects. Every request runs in a savepoint that is rolled back
after it, and a refused request must have changed nothing: the audit trail and the main tables
count the same rows before and after.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from registry.access import REVIEWER_GROUP
from registry.models import (
    API_KEY_SCOPES,
    ApiKey,
    AuditEvent,
    BulkUpload,
    Check,
    ContentFile,
    Dispute,
    Grant,
    Membership,
    Organization,
    PermissionRequest,
    Work,
)
from registry.services.api_keys import hash_api_key
from tests.api.conftest import new_key
from tests.conftest import owner_of
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db

ALLOW, LOGIN, REFUSE = "allow", "login", "refuse"
ACTORS = (
    "anonymous", "other_org", "viewer", "manager", "owner", "key_without_scope", "revoked_key",
    "suspended_org", "staff", "reviewer",
)
# Routes outside the matrix, and why.
NOT_IN_MATRIX = {
    "api:unknown": "the JSON 404 for paths that are no route",
}
# Cells that are wrong today, each reported; the test fails once one is fixed, so the list shrinks.
KNOWN_BUGS: dict[tuple[str, str], str] = {}
COUNTED = (AuditEvent, Work, Grant, ApiKey, Membership, PermissionRequest, Dispute, BulkUpload, Check, ContentFile)


@dataclass(frozen=True)
class Row:
    """Who may call one route. `org` is whose objects the path names ("studio" or "developer")."""

    method: str
    rule: str  # public | signed_in | member:<role> | list:<role> | reviewer | staff | none | hidden
    org: str = "studio"
    scope: str | None = None
    kwargs: Callable[[World], dict] = lambda world: {}
    body: Callable[[World], dict] | None = None
    # The path names nothing that exists (an unguessable token, an id nobody has): whoever is
    # allowed still meets a 404, so the row proves only that no one gets further.
    missing: bool = False
    # Per-actor answers where the rule alone does not say it (each one explained where it is used).
    overrides: dict[str, str] = field(default_factory=dict)


def gone(*args, **kwargs) -> Row:
    """A row whose path names nothing that exists."""
    return Row(*args, missing=True, **kwargs)


@dataclass
class World:
    studio: Organization
    developer: Organization
    other_studio: Organization
    other_developer: Organization
    work: Work
    content_file: ContentFile
    grant: Grant
    permission_request: PermissionRequest
    check: Check
    upload: BulkUpload
    dispute: Dispute
    key_ids: dict[str, int]
    membership_id: int
    users: dict


def uuid_kw(name: str, attribute: str) -> Callable[[World], dict]:
    return lambda world: {name: getattr(world, attribute).pk}


def missing_uuid(name: str) -> Callable[[World], dict]:
    return lambda world: {name: uuid.UUID(int=7)}


def missing_int(name: str) -> Callable[[World], dict]:
    return lambda world: {name: 999_999}


NOWHERE = {"host": "nowhere.example"}


S, D = "studio", "developer"
ROWS: dict[str, Row] = {
    # --- API: checks and receipts (developers' keys hold `checks`) ---------------------------------
    # A suspended organisation checks nothing.
    "api:checks": Row("POST", "member:viewer", D, "checks", body=lambda w: {"purpose": "tdm", "items": [
        {"sha256": "a" * 64}]}, overrides={"suspended_org": REFUSE}),
    "api:checks-files": Row("POST", "member:viewer", D, "checks", body=lambda w: {"purpose": "tdm"},
                            overrides={"suspended_org": REFUSE}),
    "api:check-detail": Row("GET", "member:viewer", D, "checks", uuid_kw("check_id", "check")),
    # Anyone verifies a receipt; the view authenticates nobody, so even a revoked key is no one.
    "api:receipts-verify": Row("POST", "public", body=lambda w: {"signature": "x", "body": "{}"},
                               overrides={"revoked_key": ALLOW}),
    "api:purposes": Row("GET", "public", overrides={"revoked_key": LOGIN}),  # keys are still authenticated
    "api:licences-snapshot": Row("GET", "member:viewer", D, "checks"),
    # --- API: disputes (parties and reviewers) -------------------------------------------------------
    "api:disputes": Row("GET", "list:viewer", S, "disputes"),
    # Parties and reviewers.
    "api:dispute-detail": Row("GET", "member:viewer", S, "disputes", uuid_kw("dispute_id", "dispute"),
                              overrides={"reviewer": ALLOW}),
    "api:dispute-comments": Row("POST", "member:manager", S, "disputes", uuid_kw("dispute_id", "dispute"),
                                body=lambda w: {"message": "A comment."}, overrides={"reviewer": ALLOW}),
    # Only the claimant withdraws; the studio here is the respondent.
    "api:dispute-withdraw": Row("POST", "none", S, "disputes", uuid_kw("dispute_id", "dispute")),
    "api:dispute-assign": Row("POST", "reviewer", S, "disputes", uuid_kw("dispute_id", "dispute")),
    "api:dispute-start-review": Row("POST", "reviewer", S, "disputes", uuid_kw("dispute_id", "dispute")),
    "api:dispute-request-info": Row("POST", "reviewer", S, "disputes", uuid_kw("dispute_id", "dispute"),
                                    body=lambda w: {"party": "respondent", "message": "More?"}),
    "api:dispute-decide": Row("POST", "reviewer", S, "disputes", uuid_kw("dispute_id", "dispute"),
                              body=lambda w: {"outcome": "rejected", "reason": "No."}),
    # --- API: the studio's catalog ---------------------------------------------------------------------
    "api:works": Row("GET", "list:viewer", S, "works:read"),
    "api:work-detail": Row("GET", "member:viewer", S, "works:read", uuid_kw("work_id", "work")),
    "api:work-withdraw": Row("POST", "member:manager", S, "works:write", uuid_kw("work_id", "work")),
    "api:work-files": Row("POST", "member:manager", S, "works:write", uuid_kw("work_id", "work")),
    # Grants and permission requests are read with works:read or checks (a licensee reads its own):
    # a key lacking works:read still holds checks.
    "api:grants": Row("GET", "list:viewer", S, "works:read", overrides={"key_without_scope": ALLOW}),
    "api:grant-detail": Row("GET", "member:viewer", S, "works:read", uuid_kw("grant_id", "grant"),
                            overrides={"key_without_scope": ALLOW}),
    "api:grant-revoke": Row("POST", "member:manager", S, "grants:write", uuid_kw("grant_id", "grant"),
                            body=lambda w: {"reason": "ended"}),
    "api:permission-requests": Row("GET", "list:viewer", S, "works:read", overrides={"key_without_scope": ALLOW}),
    "api:permission-request-accept": Row("POST", "member:manager", S, "grants:write",
                                         uuid_kw("request_id", "permission_request")),
    "api:permission-request-decline": Row("POST", "member:manager", S, "grants:write",
                                          uuid_kw("request_id", "permission_request")),
    "api:activity": Row("GET", "list:viewer", S, "works:read"),
    "api:uploads": Row("GET", "list:viewer", S, "uploads"),
    "api:upload-detail": Row("GET", "member:viewer", S, "uploads", uuid_kw("upload_id", "upload")),
    "api:upload-errors": Row("GET", "member:viewer", S, "uploads", uuid_kw("upload_id", "upload")),
    "api:upload-cancel": Row("POST", "member:manager", S, "uploads", uuid_kw("upload_id", "upload")),
    "api:verification-requests": Row("GET", "list:viewer", S, "organization"),
    # Nor does it manage keys (they are suspended with it).
    "api:keys": Row("GET", "list:owner", S, "keys", overrides={"suspended_org": REFUSE}),
    "api:key-revoke": Row("POST", "member:owner", S, "keys", lambda w: {"key_id": w.key_ids["plain"]}),
    "api:hosts": Row("GET", "list:viewer", S, "works:read"),
    "api:host-detail": gone("GET", "member:viewer", S, "works:read", lambda w: NOWHERE),
    "api:host-verify": gone("POST", "member:manager", S, "works:write", lambda w: NOWHERE),
    # --- schema, docs, keys, probes ----------------------------------------------------------------------
    # The schema and the docs authenticate a key when one is sent.
    "schema": Row("GET", "public", overrides={"revoked_key": LOGIN}),
    "api-docs": Row("GET", "public", overrides={"revoked_key": LOGIN}),
    "jwks": Row("GET", "public"),
    "healthz": Row("GET", "public"),
    "readyz": Row("GET", "public"),
    # Prometheus metrics need the configured token or address; without them the route is hidden.
    "metrics": Row("GET", "hidden"),
    # --- the administrators' desk (reviewers) --------------------------------------------------------------
    **{name: Row("GET", "reviewer", kwargs=kwargs) for name, kwargs in {
        "desk:queue": lambda w: {},
        "desk:dispute": uuid_kw("dispute_id", "dispute"),
        "desk:content-file": lambda w: {"file_id": w.content_file.pk},
        "desk:evidence-file": missing_int("evidence_id"),
        "desk:organizations": lambda w: {},
        "desk:organization": lambda w: {"organization_id": w.studio.pk},
        "desk:verification-queue": lambda w: {},
        "desk:flags": lambda w: {},
        "desk:history-lookup": lambda w: {},
        "desk:history": lambda w: {"object_type": "work", "object_id": str(w.work.pk)},
        "desk:hosts": lambda w: {},
    }.items()},
    **{name: Row("POST", "reviewer", kwargs=kwargs) for name, kwargs in {
        "desk:dispute-assign": uuid_kw("dispute_id", "dispute"),
        "desk:dispute-start-review": uuid_kw("dispute_id", "dispute"),
        "desk:dispute-comment": uuid_kw("dispute_id", "dispute"),
        "desk:dispute-request-info": uuid_kw("dispute_id", "dispute"),
        "desk:dispute-decide": uuid_kw("dispute_id", "dispute"),
        "desk:organization-suspend": lambda w: {"organization_id": w.other_studio.pk},
        "desk:organization-unsuspend": lambda w: {"organization_id": w.other_studio.pk},
        "desk:verification-approve": missing_int("request_id"),
        "desk:verification-reject": missing_int("request_id"),
        "desk:api-key-suspend": lambda w: {"key_id": w.key_ids["plain"]},
        "desk:flag-dismiss": missing_int("flag_id"),
        "desk:flag-escalate": missing_int("flag_id"),
        "desk:host-confirm": lambda w: {},
    }.items()},
    # --- portal pages for everyone ------------------------------------------------------------------------
    **{name: Row("GET", "public") for name in (
        "web:landing", "web:favicon", "web:receipt_verify", "web:signup", "web:signup_sent", "web:login",
        "web:password_reset", "web:password_reset_done", "web:password_reset_complete",
    )},
    "web:set_language": Row("POST", "public", body=lambda w: {"language": "ja"}),
    "web:logout": Row("POST", "public"),
    "web:email_confirm_pending": Row("GET", "signed_in"),
    "web:email_confirm": gone("GET", "public", kwargs=lambda w: {"token": "not-a-token"}),
    "web:invitation": gone("GET", "public", kwargs=lambda w: {"token": "not-a-token"}),
    "web:password_reset_confirm": Row("GET", "public", kwargs=lambda w: {"uidb64": "MQ", "token": "x-y"}),
    # Home sends each caller on: anonymous to the landing page, a member to their dashboard, a
    # reviewer to the desk, a person without an organisation to create one.
    "web:home": Row("GET", "signed_in", overrides={"anonymous": ALLOW, "key_without_scope": ALLOW,
                                                   "revoked_key": ALLOW, "staff": REFUSE}),
    "web:organization_create": Row("GET", "signed_in"),
    "web:organization_switch": Row("POST", "member:viewer", body=lambda w: {"organization": w.studio.slug},
                                   # Only to an organisation one belongs to; it changes no row (the session
                                   # only), so a suspended member's switch counts as "changed nothing".
                                   overrides={"other_org": REFUSE, "suspended_org": REFUSE}),
    "web:time_zone_set": Row("POST", "public", body=lambda w: {"time_zone": "Asia/Tokyo"}),
    "web:mail_language_set": Row("POST", "signed_in", body=lambda w: {"language": "ja"}),
    # --- portal pages of an organisation -------------------------------------------------------------------
    "web:verification": Row("GET", "member:viewer"),
    "web:members": Row("GET", "member:viewer"),
    "web:member_invite": Row("POST", "member:owner", body=lambda w: {"email": "new@example.com", "role": "viewer"}),
    "web:invitation_revoke": gone("POST", "member:owner", kwargs=missing_uuid("invitation_id")),
    "web:member_role": Row("POST", "member:owner", kwargs=lambda w: {"membership_id": w.membership_id},
                           body=lambda w: {"role": "manager"}),
    "web:studio_dashboard": Row("GET", "member:viewer"),
    "web:catalog": Row("GET", "member:viewer"),
    "web:work_register": Row("GET", "member:manager"),
    "web:work_detail": Row("GET", "member:viewer", kwargs=uuid_kw("work_id", "work")),
    "web:work_file_add": Row("POST", "member:manager", kwargs=uuid_kw("work_id", "work")),
    "web:work_file": Row("GET", "member:viewer", kwargs=lambda w: {"work_id": w.work.pk,
                                                                   "file_id": w.content_file.pk}),
    "web:grant_create": Row("GET", "member:manager", kwargs=uuid_kw("work_id", "work")),
    "web:grants": Row("GET", "member:viewer"),
    "web:grant_create_catalog": Row("GET", "member:manager"),
    "web:grant_revoke": Row("POST", "member:manager", kwargs=uuid_kw("grant_id", "grant"),
                            body=lambda w: {"reason": "ended"}),
    "web:uploads": Row("GET", "member:viewer"),
    "web:upload_template": Row("GET", "member:viewer"),
    "web:upload_detail": Row("GET", "member:viewer", kwargs=uuid_kw("upload_id", "upload")),
    "web:upload_errors": Row("GET", "member:viewer", kwargs=uuid_kw("upload_id", "upload")),
    "web:upload_cancel": Row("POST", "member:manager", kwargs=uuid_kw("upload_id", "upload")),
    "web:work_edit": Row("GET", "member:manager", kwargs=uuid_kw("work_id", "work")),
    "web:work_withdraw": Row("POST", "member:manager", kwargs=uuid_kw("work_id", "work")),
    "web:activity": Row("GET", "member:viewer"),
    "web:requests_inbox": Row("GET", "member:viewer"),
    "web:request_answer": Row("POST", "member:manager", kwargs=uuid_kw("request_id", "permission_request"),
                              body=lambda w: {"decision": "decline", "response": "no"}),
    "web:hosts": Row("GET", "member:viewer"),
    "web:host_detail": gone("GET", "member:viewer", kwargs=lambda w: NOWHERE),
    "web:host_verify": gone("POST", "member:manager", kwargs=lambda w: NOWHERE),
    "web:host_remove": gone("POST", "member:manager", kwargs=lambda w: NOWHERE),
    "web:disputes": Row("GET", "member:viewer"),
    "web:dispute_new": Row("GET", "member:manager"),
    "web:dispute_detail": Row("GET", "member:viewer", kwargs=uuid_kw("dispute_id", "dispute")),
    "web:dispute_comment": Row("POST", "member:manager", kwargs=uuid_kw("dispute_id", "dispute"),
                               body=lambda w: {"message": "A comment."}),
    "web:dispute_withdraw": Row("POST", "none", kwargs=uuid_kw("dispute_id", "dispute")),
    "web:dispute_evidence": gone("GET", "member:viewer", kwargs=lambda w: {"dispute_id": w.dispute.pk,
                                                                        "evidence_id": 999_999}),
    "web:developer_dashboard": Row("GET", "member:viewer", D),
    "web:api_keys": Row("GET", "member:owner", D, overrides={"suspended_org": REFUSE}),
    "web:api_key_revoke": Row("POST", "member:owner", D, kwargs=lambda w: {"key_id": w.key_ids["developer"]}),
    "web:console": Row("GET", "member:viewer", D),
    "web:check_detail": Row("GET", "member:viewer", D, kwargs=uuid_kw("check_id", "check")),
    "web:receipt_download": Row("GET", "member:viewer", D, kwargs=lambda w: {"check_id": w.check.pk,
                                                                             "part": "body"}),
    "web:check_export": Row("GET", "member:viewer", D, kwargs=lambda w: {"check_id": w.check.pk, "fmt": "csv"}),
    "web:usage": Row("GET", "member:viewer", D),
    "web:developer_requests": Row("GET", "member:viewer", D),
    "web:permission_request_new": Row("GET", "member:manager", D),
}


def all_routes() -> dict[str, str]:
    """Every named route outside the admin, as namespace:name → pattern."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespace: str | None) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern).startswith("admin/"):
                    continue  # Django's admin: its own staff login, tested in tests/registry/test_admin.py
                walk(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                found[f"{namespace}:{pattern.name}" if namespace else pattern.name] = prefix + str(pattern.pattern)

    walk(get_resolver().url_patterns, "", None)
    return found


def test_every_route_has_a_row():
    routes = set(all_routes())
    assert routes - set(ROWS) - set(NOT_IN_MATRIX) == set(), "routes without a row in the authorisation matrix"
    assert set(ROWS) - routes == set(), "rows for routes that no longer exist"


# --- the world the callers act in ---------------------------------------------------------------------


def api_as(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def world(make_org, make_user, member) -> World:
    rightsholder, ai_developer = Organization.Kind.RIGHTSHOLDER, Organization.Kind.AI_DEVELOPER
    studio, developer = make_org(rightsholder, name="Matrix Studio"), make_org(ai_developer, name="Matrix AI")
    other_studio = make_org(rightsholder, name="Other Studio")
    other_developer = make_org(ai_developer, name="Other AI")
    studio_api = api_as(new_key(studio, list(API_KEY_SCOPES)))
    work = studio_api.post("/api/v1/works", {"external_ref": "M-1", "title": "Matrix work", "kind": "image",
                                             "identifiers": ["isbn:978-0-306-40615-7"]}, format="json")
    assert work.status_code == 201, work.content[:300]
    work = Work.objects.get(pk=work.json()["id"])
    added = studio_api.post(f"/api/v1/works/{work.pk}/files",
                            {"file": io.BytesIO(make_image_bytes(3))}, format="multipart")
    assert added.status_code in (200, 201), added.content[:300]
    grant = studio_api.post("/api/v1/grants", {"scope": "work", "work": str(work.pk), "licensee": developer.slug,
                                               "purposes": ["tdm"]}, format="json")
    assert grant.status_code == 201, grant.content[:300]
    developer_api = api_as(new_key(developer, ["checks"]))
    asked = developer_api.post("/api/v1/permission-requests", {
        "rightsholder": studio.slug, "work": str(work.pk), "purposes": ["train-ai"], "message": "May we?"},
        format="json")
    assert asked.status_code == 201, asked.content[:300]
    checked = developer_api.post("/api/v1/checks", {"purpose": "tdm", "items": [{"sha256": "a" * 64}]},
                                 format="json")
    assert checked.status_code == 200
    manifest = io.BytesIO(b"external_ref,title\nU-1,Uploaded\n")
    manifest.name = "catalog.csv"
    uploaded = studio_api.post("/api/v1/uploads", {"manifest": manifest}, format="multipart")
    assert uploaded.status_code == 202, uploaded.content[:300]
    claimant = make_org(rightsholder, name="Claimant Studio")
    other_api = api_as(new_key(claimant, list(API_KEY_SCOPES)))
    disputed = other_api.post("/api/v1/disputes", {"kind": "ownership", "works": [str(work.pk)],
                                                   "statement": "This is ours."}, format="json")
    assert disputed.status_code == 201, disputed.content[:300]

    plain_key = ApiKey.objects.filter(organization=studio).first()
    developer_key = ApiKey.objects.filter(organization=developer).first()
    users = {}
    for org_name, org in ((S, studio), (D, developer)):
        for role in ("viewer", "manager"):
            users[(org_name, role)] = member(org, role).user
        users[(org_name, "owner")] = owner_of(org)
    staff = make_user("staff-not-reviewer@example.com", is_staff=True)
    reviewer = make_user("matrix-reviewer@example.com", is_staff=True)
    reviewer.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    users["staff"], users["reviewer"] = staff, reviewer
    return World(
        studio=studio, developer=developer, other_studio=other_studio, other_developer=other_developer, work=work,
        content_file=ContentFile.objects.get(work=work), grant=Grant.objects.get(pk=grant.json()["id"]),
        permission_request=PermissionRequest.objects.get(pk=asked.json()["id"]),
        check=Check.objects.get(pk=checked.json()["check_id"]), upload=BulkUpload.objects.get(pk=uploaded.json()["id"]),
        dispute=Dispute.objects.get(pk=disputed.json()["id"]),
        key_ids={"plain": plain_key.pk, "developer": developer_key.pk},
        membership_id=Membership.objects.get(user=users[(S, "viewer")], organization=studio).pk, users=users,
    )


def client_for(actor: str, row: Row, world: World, name: str) -> APIClient:
    org = world.studio if row.org == S else world.developer
    is_api = name.startswith("api:")
    client = APIClient()
    client.raise_request_exception = False  # a 500 is a cell of the matrix like any other
    if actor == "anonymous":
        return client
    if actor in ("viewer", "manager", "owner"):
        client.force_login(world.users[(row.org, actor)])
    elif actor == "other_org":
        client.force_login(owner_of(world.other_studio if row.org == S else world.other_developer))
    elif actor == "suspended_org":
        client.force_login(world.users[(row.org, "owner")])
    elif actor in ("staff", "reviewer"):
        client.force_login(world.users[actor])
    elif actor == "key_without_scope":
        scopes = [scope for scope in API_KEY_SCOPES if scope != row.scope] if is_api else list(API_KEY_SCOPES)
        if is_api and row.scope is None:
            scopes = ["checks"]
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key(org, scopes)}")
    elif actor == "revoked_key":
        key = new_key(org, [row.scope if row.scope in API_KEY_SCOPES else "checks"])
        ApiKey.objects.filter(secret_hash=hash_api_key(key)).update(revoked_at=timezone.now())
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


# --- what each rule expects ----------------------------------------------------------------------------


ROLE_RANK = {"viewer": 1, "manager": 2, "owner": 3}


def expected(name: str, row: Row, actor: str, world: World) -> str:
    if actor in row.overrides:
        return row.overrides[actor]
    wanted = _by_rule(name, row, actor, world)
    if wanted == ALLOW and (row.missing or any(value in (999_999, uuid.UUID(int=7))
                                               for value in row.kwargs(world).values())):
        return REFUSE
    return wanted


def _by_rule(name: str, row: Row, actor: str, world: World) -> str:
    is_api = name.startswith("api:")
    is_key = actor in ("key_without_scope", "revoked_key")
    if row.rule == "hidden":
        return REFUSE
    if row.rule == "public":
        return LOGIN if (is_api and actor == "revoked_key") else ALLOW
    if actor == "anonymous" or (is_key and not is_api):
        return LOGIN  # keys are for the API; on a page they are no one
    if actor == "revoked_key":
        return LOGIN
    if row.rule == "signed_in":
        return ALLOW
    if row.rule == "staff":
        return ALLOW if actor in ("staff", "reviewer") else REFUSE
    if row.rule == "reviewer":
        return ALLOW if actor == "reviewer" else REFUSE
    if row.rule == "none":
        return REFUSE
    kind, _, role = row.rule.partition(":")
    if actor == "key_without_scope":
        return REFUSE
    if actor == "suspended_org":
        # A suspended organisation may read (pages and forms), never act: its POSTs are judged
        # by what they changed (nothing), below.
        return ALLOW if row.method == "GET" or role == "viewer" else REFUSE
    if actor in ROLE_RANK:
        return ALLOW if ROLE_RANK[actor] >= ROLE_RANK[role] else REFUSE
    if actor == "other_org" and (kind == "list" or not row.kwargs(world)):
        return ALLOW  # a list, or a page naming no object, shows the caller's own organisation
    if actor in ("staff", "reviewer") and kind == "list" and name.startswith("api:disputes"):
        return ALLOW  # reviewers see every dispute; a staff member without a role sees none
    return REFUSE


def classify(response) -> str:
    status = response.status_code
    if status >= 500:
        return "error"
    if status == 401:
        return LOGIN
    if status in (301, 302, 303):
        location = response.get("Location", "")
        if reverse("web:login") in location:
            return LOGIN
        if reverse("web:organization_create") in location:
            return REFUSE
        return ALLOW
    if status in (403, 404):
        return REFUSE
    return ALLOW  # 2xx, and 400/405/409/413/422: the request itself was judged, so it got through


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in COUNTED)


def test_every_caller_gets_what_the_matrix_says_on_every_route_and_refusals_change_nothing(world, settings):
    settings.KYOKA_QUOTA_UNITS_PER_MINUTE = 10**9
    mismatches, changed, fixed = [], [], []
    for name, row in sorted(ROWS.items()):
        path = reverse(name, kwargs=row.kwargs(world))
        for actor in ACTORS:
            with transaction.atomic():
                client = client_for(actor, row, world, name)
                if actor == "suspended_org":
                    Organization.objects.filter(pk__in=[world.studio.pk, world.developer.pk]).update(
                        suspended_at=timezone.now())
                before = counts()
                body = row.body(world) if row.body else {}
                if row.method == "GET":
                    response = client.get(path, body)
                elif name.startswith("api:"):
                    response = client.generic(row.method, path, json.dumps(body), content_type="application/json")
                else:
                    response = client.post(path, body)
                after = counts()
                transaction.set_rollback(True)
            outcome, wanted = classify(response), expected(name, row, actor, world)
            if actor == "suspended_org" and row.method != "GET" and row.rule.startswith(("member:", "list:")):
                # Refused by the service, the portal shows why and redirects: what counts is that
                # a suspended organisation changed nothing.
                outcome = REFUSE if before == after else ALLOW
            if (name, actor) in KNOWN_BUGS:
                if outcome == wanted:
                    fixed.append(f"{name} as {actor}")
                continue
            if outcome != wanted:
                mismatches.append(f"{name:36} {actor:18} wanted {wanted:6} got {outcome:6} ({response.status_code})")
            if outcome != ALLOW and before != after:
                changed.append(f"{name} as {actor}: {response.status_code} changed {before} -> {after}")
    assert not changed, "refused requests that changed something:\n" + "\n".join(changed)
    assert not mismatches, f"{len(mismatches)} cells differ from the matrix:\n" + "\n".join(mismatches)
    assert not fixed, "known bugs now fixed; remove them from KNOWN_BUGS:\n" + "\n".join(fixed)
