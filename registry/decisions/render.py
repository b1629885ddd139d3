"""The signed body of a check: results in item order, each grant once under `grants`.

`checked` on every result is the normalised key the answer was decided on, so a receipt binds
content, not the client's `ref` label.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from django.conf import settings

from registry.decisions.parse import CheckRequest
from registry.decisions.rules import ItemResult
from registry.decisions.vocabulary import Decision
from registry.models import Grant


def iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def summary_count(results: list[ItemResult]) -> dict[str, int]:
    counted = Counter(r.decision for r in results)
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


def body_render(
    *, check_id: str, request: CheckRequest, results: list[ItemResult], summary: dict[str, int]
) -> bytes:
    grants: dict[str, Grant] = {}
    for result in results:
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
        "results": [result_render(r) for r in results],
        "grants": {grant_id: grant_terms(grant) for grant_id, grant in grants.items()},
    }
    # orjson writes what json.dumps(ensure_ascii=False, separators=(",", ":")) writes, several times
    # faster; work ids stay uuid objects until here, and orjson spells them as str() would.
    return orjson.dumps(document)
