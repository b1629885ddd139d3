"""Reading a receipt someone hands us: was it signed here, unaltered, and what does it say?

One reading for the API's /receipts/verify and the portal's /verify/ page. The signature is
over the exact body bytes; what the body says is reported only once the signature holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from registry.receipts import InvalidReceipt, verify_receipt


@dataclass(frozen=True)
class ReceiptReading:
    valid: bool
    kid: str | None = None
    error: str | None = None
    document: dict[str, Any] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        """The API's answer: whose check it was, when, and its summary."""
        if not self.valid:
            return {"valid": False, "error": self.error}
        doc = self.document
        return {
            "valid": True, "kid": self.kid, "registry": settings.KYOKA_REGISTRY_ID,
            "check_id": doc.get("check_id"), "snapshot_id": doc.get("snapshot_id"),
            "requester": doc.get("requester"), "checked_at": doc.get("checked_at") or doc.get("issued_at"),
            "purpose": doc.get("purpose"), "summary": doc.get("summary"),
        }


def receipt_read(body: bytes, signature: str) -> ReceiptReading:
    try:
        kid = verify_receipt(body, signature)
    except InvalidReceipt as exc:
        return ReceiptReading(valid=False, error=str(exc))
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    return ReceiptReading(valid=True, kid=kid, document=document if isinstance(document, dict) else {})
