"""The decision, as a pure function from loaded facts to results (DESIGN.md "The decision").

No database here: every rule can be tested on hand-built facts. The two rules everything
serves: nothing found is `unregistered` (never permitted), and `permitted` needs an exact
reference with standing to a work whose every deciding grant covers the request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from registry.decisions.load import Facts, SimilarWork, WorkFacts
from registry.decisions.parse import CheckRequest, Item
from registry.decisions.vocabulary import CONDITION_RANK, Decision, Method, Reason
from registry.models import Grant, Organization
from registry.models.grants import GrantState
from registry.purposes import purposes_cover

WorkId = uuid.UUID
_STATE_REASON = {
    GrantState.REVOKED: Reason.GRANT_REVOKED,
    GrantState.EXPIRED: Reason.GRANT_EXPIRED,
    GrantState.SCHEDULED: Reason.GRANT_NOT_YET_VALID,
}


@dataclass
class Match:
    """An exactly matched work as the answer reports it."""

    work: WorkFacts
    methods: list[str]
    standing: bool
    decision: Decision
    reason: Reason | None = None
    grants: list[Grant] = field(default_factory=list)


class Similar(NamedTuple):
    work: SimilarWork
    distance: int


@dataclass(slots=True)
class ItemResult:
    item: Item
    decision: Decision
    reason: Reason | None = None
    # Empty tuples rather than fresh lists: most of a batch is unregistered and nothing appends.
    matches: list[Match] | tuple[()] = ()
    similar: list[Similar] | tuple[()] = ()

    @property
    def permitted(self) -> bool:
        return self.decision == Decision.PERMITTED

    @property
    def grants(self) -> list[Grant]:
        """The grants this answer rests on (only a permitted answer rests on any)."""
        if not self.permitted:
            return []
        unique = {g.pk: g for m in self.matches for g in m.grants}
        return list(unique.values())


def grant_failures(request: CheckRequest, grant: Grant) -> list[Reason]:
    """Which conditions this grant fails, in reporting order (empty: the grant covers)."""
    failures = []
    requester = request.requester
    named_other = grant.licensee_id is not None and grant.licensee_id != requester.pk
    # "Any verified AI developer" never licenses a rightsholder checking someone else's work.
    open_but_not_a_developer = grant.licensee_id is None and requester.kind != Organization.Kind.AI_DEVELOPER
    if named_other or open_but_not_a_developer:
        failures.append(Reason.LICENSEE_NOT_GRANTED)
    if not requester.is_verified:
        failures.append(Reason.REQUESTER_UNVERIFIED)
    if not purposes_cover(grant.purposes, request.purpose):
        failures.append(Reason.PURPOSE_NOT_GRANTED)
    state = grant.state_at(request.at)
    if state != GrantState.ACTIVE:
        failures.append(_STATE_REASON[state])
    if grant.territories and request.territory not in grant.territories:
        failures.append(Reason.TERRITORY_NOT_GRANTED)
    if grant.contexts and request.context not in grant.contexts:
        failures.append(Reason.CONTEXT_NOT_GRANTED)
    if not grant.grantor.is_verified:
        failures.append(Reason.GRANTOR_UNVERIFIED)
    return failures


def work_verdict(request: CheckRequest, work: WorkFacts, grants: list[Grant]) -> tuple[Decision, Reason | None,
                                                                                      list[Grant]]:
    """A work with standing: permitted by its covering grants, or the reason of the closest one."""
    if not work.active:
        return Decision.NOT_PERMITTED, Reason.WORK_WITHDRAWN, []
    if not grants:
        return Decision.NOT_PERMITTED, Reason.NO_GRANT, []
    covering: list[Grant] = []
    closest: list[Reason] | None = None
    for grant in grants:
        failures = grant_failures(request, grant)
        if not failures:
            covering.append(grant)
        # The grant that came closest: fewest failed conditions, then the one that fails latest.
        elif closest is None or (len(failures), -CONDITION_RANK[failures[0]]) < (
            len(closest), -CONDITION_RANK[closest[0]]
        ):
            closest = failures
    if covering:
        return Decision.PERMITTED, None, covering
    assert closest is not None
    return Decision.NOT_PERMITTED, closest[0], []


def has_standing(facts: Facts, work: WorkFacts, methods: set[str], host: str | None) -> bool:
    """A reference has standing when its owner is verified and, for a URL, has proven the host."""
    if not work.owner_verified:
        return False
    if methods - {Method.URL}:
        return True  # a file hash or an identifier speaks for the content wherever it is found
    return host is not None and any(p.covers(host) for p in facts.proven_hosts.get(work.owner_id, ()))


def decide_items(request: CheckRequest, items: list[Item], facts: Facts) -> list[ItemResult]:
    """Answer every item, in order."""
    verdicts: dict[WorkId, tuple[Decision, Reason | None, list[Grant]]] = {}
    results = []
    for item, exact, patterns, near in zip(items, facts.exact, facts.patterns, facts.similar, strict=True):
        if item.error is not None:
            results.append(ItemResult(item, Decision.INVALID, Reason.INVALID_ITEM))
            continue
        if not exact and not patterns and not near:  # most items: registered by no one
            results.append(ItemResult(item, Decision.UNREGISTERED, Reason.NO_MATCH))
            continue
        similar = sorted(
            (Similar(facts.similar_works[w], d) for w, d in near.items() if w in facts.similar_works),
            key=lambda s: (s.distance, s.work.title, s.work.id),  # a uuid orders as its text does
        )
        candidates = {w: set(found) for w, found in exact.items() if w in facts.works}
        for work_id in patterns:
            # A pattern without standing is ignored entirely: it neither matches nor blocks.
            work = facts.works.get(work_id)
            if work is not None and has_standing(facts, work, {Method.URL}, item.url_host):
                candidates.setdefault(work_id, set()).add(Method.URL)
        if not candidates:
            if similar:
                results.append(ItemResult(item, Decision.NOT_PERMITTED, Reason.SIMILAR_ONLY, similar=similar))
            else:
                results.append(ItemResult(item, Decision.UNREGISTERED, Reason.NO_MATCH))
            continue
        # A withdrawn registration no longer speaks for the content: it decides (work_withdrawn)
        # only when nothing active matched. Otherwise a squatter's copy, withdrawn after a
        # dispute, would block the true owner's grants for good.
        active = {w: m for w, m in candidates.items() if facts.works[w].active}
        candidates = active or candidates
        standing = {w: has_standing(facts, facts.works[w], m, item.url_host) for w, m in candidates.items()}
        # With standing, only those decide; without, every exact match decides (and refuses).
        deciding = {w for w, ok in standing.items() if ok} or set(candidates)
        matches = []
        for work_id in sorted(candidates, key=lambda w: (facts.works[w].title, w)):
            work = facts.works[work_id]
            match = Match(work=work, methods=_ordered(candidates[work_id]), standing=standing[work_id],
                          decision=Decision.NOT_PERMITTED)
            if work_id not in deciding:
                match.reason = _standing_reason(work)
            elif work.frozen:
                match.decision, match.reason = Decision.DISPUTED, Reason.DISPUTE_OPEN
            elif not standing[work_id]:
                match.reason = _standing_reason(work)
            else:
                if work_id not in verdicts:
                    verdicts[work_id] = work_verdict(request, work, facts.grants.get(work_id, []))
                match.decision, match.reason, match.grants = verdicts[work_id]
            matches.append(match)
        deciders = [m for m in matches if m.work.id in deciding]
        if any(m.decision == Decision.DISPUTED for m in deciders):
            results.append(ItemResult(item, Decision.DISPUTED, Reason.DISPUTE_OPEN, matches, similar))
        elif all(m.decision == Decision.PERMITTED for m in deciders):
            results.append(ItemResult(item, Decision.PERMITTED, None, matches, similar))
        else:
            refusal = next(m for m in deciders if m.decision != Decision.PERMITTED)
            results.append(ItemResult(item, Decision.NOT_PERMITTED, refusal.reason, matches, similar))
    return results


def _standing_reason(work: WorkFacts) -> Reason:
    return Reason.HOST_UNVERIFIED if work.owner_verified else Reason.GRANTOR_UNVERIFIED


_METHOD_ORDER = {Method.SHA256: 0, Method.IDENTIFIER: 1, Method.URL: 2}


def _ordered(methods: set[str]) -> list[str]:
    return sorted(methods, key=lambda m: _METHOD_ORDER.get(m, 9))
