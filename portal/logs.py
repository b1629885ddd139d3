"""Logging for operators: one JSON object per line in production, with secrets masked everywhere.

The filter runs on every record before any formatter, so neither the text nor the JSON output can
carry an API key, a bearer token, a password, a link token or a full e-mail address — whichever
logger wrote it and whatever it interpolated. Masking keeps enough to correlate (a key's public
prefix, the first letter and the domain of an address) and nothing that would let a reader act.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

MASK = "***"

# (pattern, replacement) in order: the API key before the generic bearer rule, so the key keeps its
# public prefix in the log.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Kyoka API keys: kyoka_<public prefix>_<secret>
    (re.compile(r"\b(kyoka_[0-9a-f]{8})_[A-Za-z0-9_-]+"), rf"\1_{MASK}"),
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"(?i)\b(password|passwd|secret|secret_key|api_key|token|signature)(\"?\s*[=:]\s*\"?)[^\s\"'&,;]+"),
     rf"\1\2{MASK}"),
    # Tokens in links: password reset, address confirmation, invitations.
    (re.compile(r"(/accounts/reset/)[^/\s]+/[^/\s]+"), rf"\1{MASK}"),
    (re.compile(r"(/accounts/confirm/)[^/\s]+"), rf"\1{MASK}"),
    (re.compile(r"(/invitations/)[^/\s]+"), rf"\1{MASK}"),
    # E-mail addresses: the first character and the domain stay.
    (re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"), rf"\1{MASK}@\2"),
)


def mask_secrets(text: str) -> str:
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class MaskSecretsFilter(logging.Filter):
    """Rewrite the record's message (and any exception text) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info:
            # Formatted once here so the traceback's text is masked too; the formatter reuses it.
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        for extra in ("status_code", "method", "path"):
            if hasattr(record, extra):
                entry[extra] = mask_secrets(str(getattr(record, extra)))
        return json.dumps(entry, ensure_ascii=False)
