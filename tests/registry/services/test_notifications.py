"""Mail never decides a write's answer: queued after commit through Celery, retried, headers safe, localised."""

from __future__ import annotations

import json
import smtplib

import pytest
import redis
from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django.urls import reverse

from registry.access import Actor
from registry.models import Invitation, UserProfile
from registry.services.accounts import invitation_create
from registry.services.notifications import header_safe, notify_after_commit, notify_invitation
from tests.conftest import owner_of
from tests.registry.uploads.conftest import celery_worker  # noqa: F401 — a real worker for one test


class FailingBackend(BaseEmailBackend):
    attempts = 0

    def send_messages(self, messages):
        type(self).attempts += 1
        raise smtplib.SMTPServerDisconnected("the mail server went away")


@pytest.fixture
def failing_mail(settings):
    FailingBackend.attempts = 0
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"
    return FailingBackend


def test_header_values_lose_line_breaks():
    assert header_safe("Studio\r\nBcc: victim@example.com") == "Studio Bcc: victim@example.com"


@pytest.mark.django_db(transaction=True)
def test_an_organisation_name_with_a_line_break_cannot_add_a_header(make_org):
    studio = make_org(name="Evil\r\nBcc: victim@example.com")
    invitation_create(actor=Actor.for_user(owner_of(studio)), organization=studio, email="artist@example.com",
                      role="viewer")
    assert len(mail.outbox) == 1
    message = mail.outbox[0].message()
    assert message["Bcc"] is None and mail.outbox[0].recipients() == ["artist@example.com"]
    assert "\n" not in message["Subject"] and "Evil" in message["Subject"]


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_is_down_never_turns_a_committed_write_into_an_error(make_org, failing_mail):
    studio = make_org(name="Studio Aozora")
    client = Client()
    client.force_login(owner_of(studio))
    response = client.post(reverse("web:member_invite"), {"email": "artist@example.com", "role": "viewer"})
    assert response.status_code == 302
    assert Invitation.objects.filter(organization=studio, email="artist@example.com").exists()
    # The message was tried and retried (inline in tests; with backoff on a worker), then given up.
    assert failing_mail.attempts == 1 + 8


@pytest.fixture
def broker_down(settings):
    """The Celery app pointed at a port where nothing listens, then back, with fresh connections."""
    from portal.celery import app

    def point_at(url: str) -> None:
        app.conf.broker_url = url
        # Connections and producers are pooled per app: drop them so the next send dials `url`.
        app._pool = None
        app.amqp._producer_pool = None

    settings.KYOKA_NOTIFICATIONS_INLINE = False
    original = app.conf.broker_url
    retry = app.conf.broker_connection_max_retries
    app.conf.broker_connection_max_retries = 1
    point_at("redis://127.0.0.1:1/0")
    yield
    app.conf.broker_connection_max_retries = retry
    point_at(original)


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_never_turns_a_committed_write_into_an_error(make_org, broker_down):
    studio = make_org(name="Studio Aozora")
    client = Client()
    client.force_login(owner_of(studio))
    response = client.post(reverse("web:member_invite"), {"email": "artist@example.com", "role": "viewer"})
    assert response.status_code == 302
    assert Invitation.objects.filter(organization=studio).exists()


@pytest.mark.django_db(transaction=True)
def test_outside_tests_the_notification_goes_to_the_broker_after_commit(make_org, settings):
    settings.KYOKA_NOTIFICATIONS_INLINE = False
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    studio = make_org(name="Studio Aozora")
    invitation = invitation_create(actor=Actor.for_user(owner_of(studio)), organization=studio,
                                   email="artist@example.com", role="viewer")
    queued = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    broker.delete("celery")
    assert [message["headers"]["task"] for message in queued] == ["registry.tasks.send_notification"]
    args, kwargs, _options = json.loads(__import__("base64").b64decode(queued[0]["body"]))
    assert args == [] and kwargs == {"notification": "notify_invitation", "invitation_id": str(invitation.pk)}
    assert mail.outbox == []


def test_only_named_notifications_can_be_queued():
    with pytest.raises(ValueError, match="not a notification"):
        notify_after_commit(print, anything=1)


@pytest.mark.django_db
def test_mail_is_written_in_the_recipients_language(make_org, make_user):
    studio = make_org(name="Studio Aozora")
    invitee = make_user("artist@example.com")
    UserProfile.objects.create(user=invitee, language="ja")
    invitation = invitation_create(actor=Actor.for_user(owner_of(studio)), organization=studio,
                                   email="artist@example.com", role="viewer")
    mail.outbox.clear()
    notify_invitation(invitation_id=str(invitation.pk))
    assert mail.outbox[0].subject == "Kyoka: Studio Aozora への招待が届いています"
    UserProfile.objects.filter(user=invitee).update(language="en")
    notify_invitation(invitation_id=str(invitation.pk))
    assert mail.outbox[1].subject == "Kyoka: you are invited to join Studio Aozora"


@pytest.mark.django_db
def test_organisation_mail_goes_to_each_member_in_their_language(make_org, member, reviewer):
    from registry.services.notifications import notify_verification_decided
    from registry.services.verification import verification_request_approve, verification_request_submit

    studio = make_org(name="Studio Hoshi", verified=False)
    manager = member(studio, "manager").user
    UserProfile.objects.create(user=manager, language="ja")
    request = verification_request_submit(actor=Actor.for_user(owner_of(studio)), organization=studio,
                                          legal_name="Hoshi KK")
    verification_request_approve(actor=Actor.for_user(reviewer), verification_request=request)
    mail.outbox.clear()
    notify_verification_decided(verification_request_id=request.pk)
    subjects = {m.to[0]: m.subject for m in mail.outbox}
    assert subjects[manager.email] == "Kyoka: Studio Hoshi は認証されました"
    assert subjects[owner_of(studio).email] == "Kyoka: Studio Hoshi is verified"
    assert settings.LANGUAGE_CODE == "en"


@pytest.fixture
def mail_directory(tmp_path, monkeypatch):
    """Mail the worker sends lands here as files (the worker takes EMAIL_URL from the environment)."""
    directory = tmp_path / "mail"
    monkeypatch.setenv("EMAIL_URL", f"filemail:///{directory}")
    return directory


@pytest.mark.celery_worker
def test_a_real_worker_sends_the_mail_queued_after_commit(
    mail_directory, celery_worker, make_org, settings  # noqa: F811 — the fixture imported above
):
    from tests.registry.uploads.conftest import wait_for

    settings.KYOKA_NOTIFICATIONS_INLINE = False
    studio = make_org(name="Studio Aozora")
    invitation_create(actor=Actor.for_user(owner_of(studio)), organization=studio, email="artist@example.com",
                      role="viewer")
    assert mail.outbox == []  # nothing was sent by the request's process

    def sent() -> str:
        files = list(mail_directory.glob("*.log")) if mail_directory.exists() else []
        return files[0].read_text() if files else ""

    message = wait_for(sent, timeout=30, what=f"the worker's mail\n{celery_worker.output()[-2000:]}")
    assert "To: artist@example.com" in message and "/invitations/" in message
    assert "Studio Aozora" in message
