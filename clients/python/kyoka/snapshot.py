"""Licence snapshots on disk, and deciding exact keys from them with no network at all.

`kyoka sync` keeps, per purpose/territory/context, a directory with the signed bodies exactly as
received (`<snapshot id>.json` and `<snapshot id>.jws`), `chain.json` (a full snapshot's id, then the
deltas applied on top of it, in order) and `jwks.json` (the registry's keys when synced). Loading
verifies every body against the saved keys and replays the chain, so a file edited on disk is
refused, not trusted.

Deciding offline is only ever as good as the snapshot, so it fails closed:
- a snapshot past its `valid_until` decides nothing (`SnapshotExpired`), whatever the rows;
- a URL under a listed pattern is permitted unless it is one of the pattern's exceptions;
- a key the snapshot does not hold is *not permitted* (`not_in_snapshot`): in an opt-in registry
  everything outside the permitted set is not permitted anyway;
- a URL the client cannot bring to the registry's normal form with certainty is not permitted;
- pHash items are similarity, which never permits: not permitted.
A permitted answer carries the snapshot's id as its proof (its signature sits beside it on disk).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kyoka.client import Client, Decision, item_for
from kyoka.errors import BadResponse, BadSignature, SnapshotExpired, SnapshotMissing
from kyoka.receipts import verify
from kyoka.urls import normalize_url, pattern_matches, url_host

KEY_KINDS = ("sha256", "url", "url_pattern", "identifier", "url_pattern_except")
# Per pattern, the exact URLs under it that are refused: no keys, so not in key_count.
COUNTED_KINDS = KEY_KINDS[:4]
_SEPARATORS = str.maketrans("", "", "- ")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def default_directory() -> Path:
    configured = os.environ.get("KYOKA_SNAPSHOT_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kyoka" / "snapshots"


def terms_directory(
    base: str | Path | None, *, purpose: str, territory: str | None, context: str | None
) -> Path:
    name = f"{purpose}__{(territory or 'any').upper() if territory else 'any'}__{context or 'commercial'}"
    return Path(base) if base is not None and (Path(base) / "chain.json").exists() else (
        Path(base or default_directory()) / name
    )


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: str
    requester: str
    purpose: str
    territory: str | None
    context: str
    issued_at: str
    valid_until: str
    key_count: int


class Snapshot:
    """The merged key set of a verified chain of snapshot bodies."""

    def __init__(self, documents: list[dict[str, Any]], *, clock=time.time) -> None:
        if not documents:
            raise SnapshotMissing("no snapshot")
        keys: dict[str, dict[str, list[str]]] = {kind: {} for kind in KEY_KINDS}
        previous: dict[str, Any] | None = None
        for document in documents:
            base = document.get("base")
            if base is None:
                keys = {kind: dict(document["keys"].get(kind, {})) for kind in KEY_KINDS}
            else:
                if previous is None or base.get("snapshot_id") != previous["snapshot_id"]:
                    raise BadResponse("a delta does not follow the snapshot it was made against")
                for kind in KEY_KINDS:
                    for key in document["removed"].get(kind, {}):
                        keys[kind].pop(key, None)
                    keys[kind].update(document["added"].get(kind, {}))
            if previous is not None and any(
                document.get(t) != previous.get(t) for t in ("requester", "purpose", "territory", "context", "registry")
            ):
                raise BadResponse("the chain mixes snapshots of different terms")
            previous = document
        assert previous is not None
        latest = previous
        if sum(len(keys[kind]) for kind in COUNTED_KINDS) != latest.get("key_count"):
            raise BadResponse("the replayed snapshot does not hold the key count it was signed with")
        self.document = latest
        self._documents = documents
        self.info = SnapshotInfo(
            snapshot_id=latest["snapshot_id"], requester=latest["requester"], purpose=latest["purpose"],
            territory=latest.get("territory"), context=latest["context"], issued_at=latest["issued_at"],
            valid_until=latest["valid_until"], key_count=latest["key_count"],
        )
        self.grants: dict[str, Any] = latest.get("grants", {})
        self.sha256 = keys["sha256"]
        self.urls = keys["url"]
        self.identifiers = keys["identifier"]
        self.patterns: dict[str, list[tuple[str, list[str], frozenset[str]]]] = defaultdict(list)
        for pattern, grants in keys["url_pattern"].items():
            host = url_host(pattern)
            if host:
                excepted = frozenset(keys["url_pattern_except"].get(pattern, ()))
                self.patterns[host].append((pattern, grants, excepted))
        self._valid_until = _parse_time(latest["valid_until"])
        self.signature: str | None = None  # set when loaded from disk: the latest body's signature
        self._clock = clock

    def chain_documents(self) -> list[dict[str, Any]]:
        """The verified chain as plain JSON, to ship to workers (Dask, Spark) and rebuild there."""
        return list(self._documents)

    # --- Loading and syncing ---------------------------------------------------------------------

    @classmethod
    def load(
        cls, *, purpose: str, territory: str | None = None, context: str | None = None,
        directory: str | Path | None = None, jwks: dict[str, Any] | None = None, clock=time.time,
    ) -> Snapshot:
        """Load and verify the synced snapshot for these terms. Raises SnapshotExpired past valid_until."""
        folder = terms_directory(directory, purpose=purpose, territory=territory, context=context)
        chain_file = folder / "chain.json"
        if not chain_file.exists():
            raise SnapshotMissing(f"no snapshot for {purpose} in {folder}: run `kyoka sync --purpose {purpose}`")
        chain = json.loads(chain_file.read_text())
        keys = jwks or json.loads((folder / "jwks.json").read_text())
        documents = []
        for snapshot_id in chain:
            if not _UUID.fullmatch(str(snapshot_id)):
                raise BadResponse("chain.json names something that is not a snapshot id")
            body = (folder / f"{snapshot_id}.json").read_bytes()
            verify(body, (folder / f"{snapshot_id}.jws").read_text().strip(), keys)
            documents.append(json.loads(body))
        snapshot = cls(documents, clock=clock)
        if (snapshot.info.purpose, snapshot.info.context) != (purpose, context or snapshot.info.context) or (
            (snapshot.info.territory or None) != (territory.upper() if territory else None)
        ):
            raise BadResponse("the stored snapshot was issued for other terms")
        snapshot.folder = folder
        snapshot.signature = (folder / f"{snapshot.info.snapshot_id}.jws").read_text().strip()
        snapshot.ensure_valid()
        return snapshot

    @classmethod
    def sync(
        cls, client: Client, *, purpose: str, territory: str | None = None, context: str | None = None,
        directory: str | Path | None = None,
    ) -> tuple[Snapshot, str]:
        """Bring the stored snapshot up to date; return it and "full" or "delta"."""
        folder = terms_directory(directory, purpose=purpose, territory=territory, context=context)
        folder.mkdir(parents=True, exist_ok=True)
        chain: list[str] = []
        since = None
        try:
            held = cls.load(purpose=purpose, territory=territory, context=context, directory=folder)
            chain = json.loads((folder / "chain.json").read_text())
            since = held.info.issued_at
        except (SnapshotMissing, SnapshotExpired, BadResponse, BadSignature, OSError, ValueError, KeyError):
            chain, since = [], None
        body, signature = client.snapshot(purpose=purpose, territory=territory, context=context, since=since)
        document = json.loads(body)
        if not _UUID.fullmatch(str(document.get("snapshot_id"))):
            raise BadResponse("the snapshot has no id")
        kind = "full"
        if document.get("base") is not None:
            if not chain or document["base"].get("snapshot_id") != chain[-1]:
                body, signature = client.snapshot(purpose=purpose, territory=territory, context=context)
                document = json.loads(body)
                chain = []
            else:
                kind = "delta"
        if document.get("base") is None:
            chain = []
        (folder / f"{document['snapshot_id']}.json").write_bytes(body)
        (folder / f"{document['snapshot_id']}.jws").write_text(signature)
        (folder / "jwks.json").write_text(json.dumps(client.jwks()))
        chain.append(document["snapshot_id"])
        temporary = folder / "chain.json.tmp"
        temporary.write_text(json.dumps(chain))
        os.replace(temporary, folder / "chain.json")
        for old in folder.glob("*.json"):
            if _UUID.fullmatch(old.stem) and old.stem not in chain:
                old.unlink()
                old.with_suffix(".jws").unlink(missing_ok=True)
        try:
            return cls.load(purpose=purpose, territory=territory, context=context, directory=folder), kind
        except BadResponse:
            if kind != "delta":
                raise
            # The delta did not replay to the key count it was signed with: start over, in full.
            (folder / "chain.json").write_text("[]")  # kept, so the folder stays this one
            return cls.sync(client, purpose=purpose, territory=territory, context=context, directory=folder)

    # --- Deciding --------------------------------------------------------------------------------

    def ensure_valid(self) -> None:
        if self._clock() >= self._valid_until:
            raise SnapshotExpired(
                f"the licence snapshot {self.info.snapshot_id} expired at {self.info.valid_until}: run `kyoka sync`"
            )

    def grants_for(self, value: Any) -> list[str] | None:
        """The grant ids a key rests on, or None when it is not permitted. Raises once expired."""
        if self._clock() >= self._valid_until:
            self.ensure_valid()
        item = value if isinstance(value, dict) else item_for(value)
        if "sha256" in item:
            digest = item["sha256"]
            return self.sha256.get(digest.strip().lower()) if isinstance(digest, str) else None
        if "url" in item:
            url = normalize_url(item["url"])
            if url is None:
                return None
            found = self.urls.get(url)
            if found is not None:
                return found
            for pattern, grants, excepted in self.patterns.get(url_host(url) or "", ()):
                if url not in excepted and pattern_matches(pattern, url):
                    return grants
            return None
        if "identifier" in item:
            return self._identifier(item["identifier"])
        return None

    def matcher(self, kind: str | None = None):
        """A fast `value -> grant ids or None` for one column of plain strings (the offline filter's loop).

        `kind` is "sha256", "url" or "identifier"; None tells them apart per value as `item_for`
        does. Refuses (SnapshotExpired) once the snapshot expires, checked on every call.
        """
        sha256, urls, clock, valid_until = self.sha256, self.urls, self._clock, self._valid_until
        patterns, ensure_valid = self.patterns, self.ensure_valid

        def by_url(value: str) -> list[str] | None:
            # A value found as it is already is a normalised URL, whose normal form is itself.
            found = urls.get(value)
            if found is not None:
                return found
            url = normalize_url(value)
            if url is None:
                return None
            found = urls.get(url)
            if found is None and patterns:
                for pattern, grants, excepted in patterns.get(url_host(url) or "", ()):
                    if url not in excepted and pattern_matches(pattern, url):
                        return grants
            return found

        def by_sha256(value: str) -> list[str] | None:
            found = sha256.get(value)
            if found is None and not (len(value) == 64 and value.islower()):
                found = sha256.get(value.strip().lower())  # a spelling other than the listed one
            return found

        def any_kind(value: str) -> list[str] | None:
            if value[:4].lower() == "http":
                return by_url(value)
            if len(value.strip()) == 64:
                return by_sha256(value)
            return self.grants_for(value)

        chosen = {"url": by_url, "sha256": by_sha256, "identifier": self._identifier}.get(kind or "", any_kind)

        def match(value: Any) -> list[str] | None:
            if clock() >= valid_until:
                ensure_valid()
            if not isinstance(value, str):
                return None if value is None else match(str(value))
            return chosen(value)

        return match

    def _identifier(self, raw: Any) -> list[str] | None:
        if not isinstance(raw, str) or ":" not in raw:
            return None
        scheme, _, value = raw.strip().partition(":")
        scheme, value = scheme.strip().lower(), value.strip()
        found = self.identifiers.get(f"{scheme}:{value}")
        if found is None and scheme in ("isbn", "isrc"):
            # Separators never change these identifiers; any other spelling must be canonical.
            found = self.identifiers.get(f"{scheme}:{value.translate(_SEPARATORS).upper()}")
        return found

    def decide(self, value: Any, *, ref: str | None = None) -> Decision:
        item = value if isinstance(value, dict) else item_for(value)
        grants = self.grants_for(item)
        checked = {k: v for k, v in item.items() if k != "ref"}
        if grants:
            return Decision(ref=ref, checked=checked, decision="permitted", permitted=True,
                            proof=self.info.snapshot_id, signature=self.signature)
        return Decision(ref=ref, checked=checked, decision="not_permitted", permitted=False,
                        reason="not_in_snapshot", proof=self.info.snapshot_id, signature=self.signature)
