"""Domain errors. The API maps them to HTTP in one handler; the portal shows their message."""

from __future__ import annotations


class KyokaError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationFailed(KyokaError):
    code = "invalid"


class PermissionDenied(KyokaError):
    code = "forbidden"
    status = 403


class NotFound(KyokaError):
    code = "not_found"
    status = 404


class Conflict(KyokaError):
    code = "conflict"
    status = 409


class GrantImmutable(Conflict):
    code = "grant_immutable"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class LimitReached(KyokaError):
    """A per-organisation limit on how much of something may exist or be filed (HTTP 429)."""

    code = "limit_reached"
    status = 429
