"""`KyokaRule` for datadiligence, in its own module: importing datadiligence has side effects
(it builds its default evaluators and prints a warning without a Spawning key), so `kyoka`
imports it only when the rule is asked for (`from kyoka import KyokaRule`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyoka.client import Client
from kyoka.errors import KyokaError


def _rule_base():
    try:
        from datadiligence.rules import BulkRule
    except ImportError:  # datadiligence is optional; the rule still works on its own
        return object
    return BulkRule


class KyokaRule(_rule_base()):
    """A datadiligence rule asking Kyoka; closed by default, unlike the rules it sits beside."""

    def __init__(self, *, purpose: str, url: str | None = None, key: str | None = None,
                 territory: str | None = None, context: str | None = None, offline: bool = False,
                 snapshot_dir: str | Path | None = None, client: Client | None = None) -> None:
        super().__init__()
        self.purpose, self.territory, self.context = purpose, territory, context
        self.offline, self.snapshot_dir = offline, snapshot_dir
        self.client = client or (None if offline else Client(url, key))

    def is_ready(self) -> bool:
        # Always ready: a rule that reports "not ready" is skipped, and skipping is failing open.
        return True

    def _permitted(self, urls: list[str]) -> list[bool]:
        try:
            if self.offline:
                from kyoka.snapshot import Snapshot

                if getattr(self, "_snapshot", None) is None:
                    self._snapshot = Snapshot.load(purpose=self.purpose, territory=self.territory,
                                                   context=self.context, directory=self.snapshot_dir)
                return [self._snapshot.decide({"url": u}).permitted for u in urls]
            outcome = self.client.check([{"url": u} for u in urls], purpose=self.purpose,
                                        territory=self.territory, context=self.context)
            return [d.permitted for d in outcome.decisions]
        except (KyokaError, OSError, ValueError):
            return [False] * len(urls)

    def is_allowed(self, url: str | None = None, urls: list[str] | None = None, **kwargs: Any):
        if urls is None:
            return False if url is None else self._permitted([url])[0]
        return self._permitted(list(urls))

    def filter_allowed(self, urls: list[str] | None = None, url: str | None = None, **kwargs: Any) -> list[str]:
        urls = list(urls) if urls is not None else ([url] if url is not None else [])
        return [u for u, ok in zip(urls, self._permitted(urls), strict=True) if ok]
