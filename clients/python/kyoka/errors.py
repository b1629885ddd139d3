"""What can go wrong. Every one of these leaves the items it touched *not permitted*."""


class KyokaError(Exception):
    """Base class: the registry could not answer, or its answer cannot be trusted."""


class RegistryUnavailable(KyokaError):
    """Unreachable, timed out, or kept answering 429/5xx after every retry."""


class BadResponse(KyokaError):
    """An answer that is not what the API promises: an error status, a body that does not parse,
    results that do not line up with the items asked about."""


class BadSignature(KyokaError):
    """A receipt or snapshot whose Receipt-Signature does not verify against the registry's keys."""


class SnapshotExpired(KyokaError):
    """A licence snapshot past its valid_until: it no longer permits anything."""


class SnapshotMissing(KyokaError):
    """No licence snapshot for these terms has been synced (run `kyoka sync`)."""
