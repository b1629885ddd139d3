"""Schema fuzzing: schemathesis generates requests for every operation in /api/schema/.

Each operation is called with a bounded number of generated examples as each kind of caller
(a studio's key, a developer's key, a reviewer's session), with quotas raised for the run.
Whatever the input: no 5xx, and every response conforms to the schema (body and content type).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from registry.models import API_KEY_SCOPES
from tests.api.conftest import new_key

EXAMPLES_PER_OPERATION = 3
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]


def load_schema() -> schemathesis.schemas.BaseSchema:
    """The schema /api/schema/ serves, generated the same way, with the WSGI application to call."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(document, default=str)))
    loaded.app = get_wsgi_application()
    return loaded


@pytest.fixture(autouse=True)
def direct_wsgi_calls(settings, db):
    # Requests go straight to the WSGI application, not through Django's test client, so the
    # test's database connection must be kept open across them as that client keeps it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.ALLOWED_HOSTS = ["*"]
    settings.KYOKA_QUOTA_UNITS_PER_MINUTE = 10**9
    settings.KYOKA_QUOTA_ANONYMOUS_UNITS_PER_MINUTE = 10**9
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def make_caller(name: str, studio, developer, reviewer) -> Caller:
    if name == "studio_key":
        return Caller("studio_key", {"Authorization": f"Bearer {new_key(studio, list(API_KEY_SCOPES))}"})
    if name == "developer_key":
        return Caller("developer_key", {"Authorization": f"Bearer {new_key(developer, ['checks', 'disputes'])}"})
    browser = Client()
    browser.force_login(reviewer)  # no request through the test client: it would reconnect close_old_connections
    session = browser.cookies["sessionid"].value
    token = "k" * 32  # a CSRF secret of the right form; the cookie and the header agree
    return Caller("reviewer_session", {"Cookie": f"sessionid={session}; csrftoken={token}", "X-CSRFToken": token})


@pytest.fixture
def callers() -> dict[str, Caller]:
    """Made on the first example of each test: the examples of one test share its database."""
    return {}


# GET /api/v1/disputes answers a page ({"next", "previous", "results"}) where its schema says
# a bare array (registry/api/disputes.py declares DisputeSerializer(many=True)); reported, and
# left out until the schema says what the view does.
KNOWN_SCHEMA_BUGS: list[tuple[str, str]] = []

schema = load_schema()
for method, path in KNOWN_SCHEMA_BUGS:
    schema = schema.exclude(method=method, path=path)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)


def call_as(name: str, case, callers: dict[str, Caller], studio, developer, reviewer) -> None:
    if name not in callers:
        callers[name] = make_caller(name, studio, developer, reviewer)
    # Each example in a savepoint rolled back after it: examples do not pile up state, and one
    # that breaks the database's transaction shows as its own 500, not as every later one's.
    with transaction.atomic():
        response = case.call(headers=callers[name].headers)
        transaction.set_rollback(True)
    case.validate_response(response, checks=CHECKS)


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_as_a_studio_key_every_operation_answers_within_its_schema_and_never_5xx(case, callers, studio, developer,
                                                                                  reviewer):
    call_as("studio_key", case, callers, studio, developer, reviewer)


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_as_a_developer_key_every_operation_answers_within_its_schema_and_never_5xx(case, callers, studio,
                                                                                     developer, reviewer):
    call_as("developer_key", case, callers, studio, developer, reviewer)


@pytest.mark.slow
@schema.parametrize()
@FUZZ_SETTINGS
def test_as_a_reviewer_session_every_operation_answers_within_its_schema_and_never_5xx(case, callers, studio,
                                                                                        developer, reviewer):
    call_as("reviewer_session", case, callers, studio, developer, reviewer)
