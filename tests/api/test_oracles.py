"""Errors that must not tell a caller what exists: "no such" and "not yours" answer alike."""

from __future__ import annotations

import uuid

import pytest

from registry.models import Organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def others_work(key_client, make_org) -> str:
    other = make_org(Organization.Kind.RIGHTSHOLDER, name="Other Studio")
    created = key_client(other, ["works:write"]).post(
        "/api/v1/works", {"external_ref": "O-1", "title": "Theirs"}, format="json")
    assert created.status_code == 201
    return created.json()["id"]


def same_answer(first, second) -> dict:
    assert (first.status_code, first.json()) == (second.status_code, second.json())
    return first.json()["error"]


def test_a_grant_names_a_missing_licensee_and_a_studio_as_licensee_alike(key_client, studio, make_org):
    client = key_client(studio, ["grants:write"])
    another_studio = make_org(Organization.Kind.RIGHTSHOLDER, name="Another Studio")

    def grant_to(slug: str):
        return client.post("/api/v1/grants", {"scope": "catalog", "purposes": ["tdm"], "licensee": slug},
                           format="json")

    error = same_answer(grant_to("no-such-organisation"), grant_to(another_studio.slug))
    assert error["code"] == "invalid" and set(error["fields"]) == {"licensee"}


def test_a_grant_on_someone_elses_work_and_on_no_work_answer_alike(key_client, studio, developer, others_work):
    client = key_client(studio, ["grants:write"])

    def grant_on(work: str):
        return client.post("/api/v1/grants", {"scope": "work", "work": work, "purposes": ["tdm"],
                                              "licensee": developer.slug}, format="json")

    same_answer(grant_on(others_work), grant_on(str(uuid.uuid4())))


def test_a_permission_request_to_a_missing_slug_and_to_a_developer_answer_alike(key_client, developer, make_org):
    client = key_client(developer, ["checks"])
    another_developer = make_org(Organization.Kind.AI_DEVELOPER, name="Another AI")

    def ask(slug: str):
        return client.post("/api/v1/permission-requests", {"rightsholder": slug, "purposes": ["tdm"]},
                           format="json")

    error = same_answer(ask("no-such-organisation"), ask(another_developer.slug))
    assert set(error["fields"]) == {"rightsholder"}


def test_a_permission_request_for_a_work_of_another_studio_and_for_no_work_answer_alike(
    key_client, developer, studio, others_work
):
    client = key_client(developer, ["checks"])

    def ask(work: str):
        return client.post("/api/v1/permission-requests", {"rightsholder": studio.slug, "work": work,
                                                           "purposes": ["tdm"]}, format="json")

    same_answer(ask(others_work), ask(str(uuid.uuid4())))
