"""The signed body of a check: results in item order, each grant once under `grants`.

`checked` on every result is the normalised key the answer was decided on, so a receipt binds
content, not the client's `ref` label.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from django.conf import settings

from registry.decisions.batch import DecidedBatch, ParsedBatch
from registry.decisions.parse import CheckRequest, Item
from registry.decisions.rules import ItemResult
from registry.decisions.vocabulary import Decision, Reason
from registry.models import Grant


def iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def summary_count(decided: DecidedBatch) -> dict[str, int]:
    counted = Counter(r.decision for r in decided.results)
    counted[Decision.UNREGISTERED] += decided.unregistered_plain
    return {decision.value: counted[decision] for decision in Decision}


def grant_terms(grant: Grant) -> dict[str, Any]:
    return {
        "purposes": grant.purposes, "territories": grant.territories, "contexts": grant.contexts,
        "valid_until": iso(grant.valid_until), "conditions": {k: v for k, v in grant.conditions.items() if v},
        "scope": grant.scope, "grantor": grant.grantor.slug,
    }


def result_render(result: ItemResult) -> dict[str, Any]:
    item = result.item
    rendered: dict[str, Any] = {"index": item.index}
    if item.ref is not None:
        rendered["ref"] = item.ref
    rendered["checked"] = item.checked
    # Decision and Reason are str subclasses, which orjson writes as the strings they are.
    rendered["decision"] = result.decision
    rendered["permitted"] = result.permitted
    if result.reason:
        rendered["reason"] = result.reason
    if item.error:
        rendered["error"] = item.error
    if result.matches:
        rendered["matches"] = [
            {
                "work": m.work.id, "title": m.work.title, "owner": m.work.owner_slug,
                "method": m.methods[0], "methods": m.methods, "standing": m.standing, "decision": m.decision.value,
                **({"reason": m.reason.value} if m.reason else {}),
            }
            for m in result.matches
        ]
    if result.similar:
        rendered["similar"] = [
            {"work": s.work.id, "title": s.work.title, "owner": s.work.owner_slug, "distance": s.distance}
            for s in result.similar
        ]
    if result.matches and (grants := result.grants):  # only a permitted answer rests on grants
        rendered["grants"] = [str(g.pk) for g in grants]
    return rendered


# What `result_render` writes for a plain key the filter ruled out, as %-templates made by
# rendering a marked item once: (index, JSON ref, key) with a ref, (index, key) without. A SHA-256
# is lower-case hex, written as it is; a URL is written as a JSON string.
_INDEX_MARK, _REF_MARK, _KEY_MARK = 987654321, "kyoka-ref-mark", "kyoka-key-mark"


def unregistered_template(*, sha256: bool, with_ref: bool) -> bytes:
    ref = _REF_MARK if with_ref else None
    item = Item(_INDEX_MARK, ref, _KEY_MARK) if sha256 else Item(_INDEX_MARK, ref, url=_KEY_MARK, url_host="")
    rendered = orjson.dumps(result_render(ItemResult(item, Decision.UNREGISTERED, Reason.NO_MATCH)))
    template = rendered.replace(b"%", b"%%").replace(str(_INDEX_MARK).encode(), b"%d", 1)
    template = template.replace(orjson.dumps(_REF_MARK), b"%b", 1)
    key_mark = _KEY_MARK.encode() if sha256 else orjson.dumps(_KEY_MARK)
    return template.replace(key_mark, b"%b", 1)


_SHA256_WITH_REF = unregistered_template(sha256=True, with_ref=True)
_SHA256_WITHOUT_REF = unregistered_template(sha256=True, with_ref=False)
_URL_WITH_REF = unregistered_template(sha256=False, with_ref=True)
_URL_WITHOUT_REF = unregistered_template(sha256=False, with_ref=False)


def results_render(decided: DecidedBatch) -> bytes:
    """The `results` array, in item order, as JSON: every plain key as unregistered, then the
    results of the items that took the rules in their places (the plain keys among them too)."""
    parts = decided.plain_parts if decided.plain_parts is not None else plain_parts_render(decided)
    dumps = orjson.dumps
    for result in decided.results:
        parts[result.item.index] = dumps(result_render(result))
    return b"[" + b",".join(parts) + b"]"


def plain_parts_render(batch: ParsedBatch | DecidedBatch) -> list[bytes]:
    """A list of `batch.size` JSON results with every plain key's in its place, written as
    unregistered; every other place empty (`results_render` fills them). It needs only the parsed
    columns, so a check writes it while the database looks up the rest (batch_decide's `meanwhile`)."""
    dumps = orjson.dumps
    parts: list[bytes] = [b""] * batch.size
    column = batch.sha256s
    for index, ref, digest in zip(column.indexes, column.refs, column.keys, strict=True):
        parts[index] = (_SHA256_WITHOUT_REF % (index, digest.encode()) if ref is None
                        else _SHA256_WITH_REF % (index, dumps(ref), digest.encode()))
    column = batch.urls
    for index, ref, url in zip(column.indexes, column.refs, column.keys, strict=True):
        parts[index] = (_URL_WITHOUT_REF % (index, dumps(url)) if ref is None
                        else _URL_WITH_REF % (index, dumps(ref), dumps(url)))
    return parts


def body_render(
    *, check_id: str, request: CheckRequest, decided: DecidedBatch, summary: dict[str, int]
) -> bytes:
    grants: dict[str, Grant] = {}
    for result in decided.results:
        if result.matches:  # only a permitted answer rests on grants, and it has matches
            for grant in result.grants:
                grants.setdefault(str(grant.pk), grant)
    document = {
        "check_id": check_id,
        "checked_at": iso(request.at),
        "purpose": request.purpose,
        "territory": request.territory,
        "context": request.context,
        "requester": request.requester.slug,
        "registry": settings.KYOKA_REGISTRY_ID,
        "summary": summary,
        "results": orjson.Fragment(results_render(decided)),
        "grants": {grant_id: grant_terms(grant) for grant_id, grant in grants.items()},
    }
    # orjson writes what json.dumps(ensure_ascii=False, separators=(",", ":")) writes, several times
    # faster; work ids stay uuid objects until here, and orjson spells them as str() would.
    return orjson.dumps(document)
