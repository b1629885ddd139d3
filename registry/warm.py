"""Warming a web process's check path before it takes traffic (gunicorn's post_worker_init calls this)."""

from __future__ import annotations

import gc
import logging
import secrets

from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)

# Net new container objects that set off a young collection (Python's default is 700). A 1,000-item
# check keeps ~4,000 objects alive until it answers, so at 700 every check ran about six young
# collections and, every few checks, an older one (up to 5 ms in the middle of a request): 0.6 ms a
# check, 1.4 ms a near-match check, gone at this threshold. What a request leaves is freed by
# reference counting when it ends; only cycles wait for a collection, at most this many objects.
YOUNG_COLLECTION_THRESHOLD = 50_000

# Decisions run while warming: more than KYOKA_DB_PREPARE_THRESHOLD (2), so each of the check's fixed
# statements is prepared on this process's connection before a request needs it.
DECISION_WARM_ROUNDS = 3


def check_path_warm(using: str = DEFAULT_DB_ALIAS) -> None:
    """Map the near-match index the machine's workers share (building it if none has), build the key filter,
    load what the first request would, freeze what the process holds out of the collector's scans,
    and let requests' objects be freed before a collection scans them (YOUNG_COLLECTION_THRESHOLD).

    A worker that cannot (the database is away) starts anyway: both fall back to the database,
    which is slower, never wrong, and they warm on first use.
    """
    from registry.selectors.key_filter import key_filter
    from registry.selectors.phash_index import phash_index

    if connections[using].vendor == "postgresql":
        try:
            phash_index(using).warm()
            key_filter(using).warm()
            _decision_warm()
        except Exception:
            logger.exception("Warming the check path failed; it warms on first use")
    try:
        _framework_warm()
    except Exception:
        logger.exception("Warming the request path failed; it warms on first use")
    # What the process holds at this point (Django, the URLconf, the filter) lives as long as the
    # process: moved out of the collector's reach, a full collection no longer walks it in the
    # middle of a check (a 1,000-item check allocates enough to set one off).
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD)


def _decision_warm() -> None:
    """Decide, render and sign a check of registered and unregistered keys a few times, recording nothing.

    A worker's first checks otherwise plan every fixed statement afresh (PostgreSQL prepares one
    on its third run on a connection) and take the decision's code paths for the first time: with
    four workers, each of the first dozen checks a server answered paid ~1-3 ms for it. The keys
    are a few the registry holds (so the statements that load works and grants run, and are
    prepared with the same shapes a real check sends) and some it does not. Read-only: the
    requester is an unsaved organisation, and no Check or WorkAccess row is written.
    """
    from registry.decisions.batch import batch_decide, batch_parse
    from registry.decisions.parse import parse_check_request
    from registry.decisions.run import check_render
    from registry.models import ContentFile, Organization, WorkIdentifier, WorkURL
    from registry.purposes import PURPOSES

    items: list[dict] = [{"ref": "warm", "sha256": sha256} for sha256 in
                         ContentFile.objects.values_list("sha256", flat=True)[:20]]
    items += [{"url": url} for url in WorkURL.objects.filter(is_pattern=False).values_list("url", flat=True)[:20]]
    items += [{"identifier": f"{scheme}:{value}"} for scheme, value in
              WorkIdentifier.objects.values_list("scheme", "value")[:5]]
    items += [{"sha256": secrets.token_hex(32)} for _ in range(60)]
    items += [{"url": f"https://warm.invalid/{secrets.token_hex(8)}.jpg"} for _ in range(20)]
    requester = Organization(name="warm")
    for _ in range(DECISION_WARM_ROUNDS):
        terms = parse_check_request(requester=requester, purpose=PURPOSES[0], territory="JP")
        check_render(request_terms=terms, decided=batch_decide(terms, batch_parse(items)))


def _framework_warm() -> None:
    """What a worker's first request would otherwise load (~0.5 s): every view module (the URLconf
    imports them), both languages' catalogues, the signing key, the territory table, and the
    connections to the cache and the quota store."""
    from django.conf import settings
    from django.core.cache import cache
    from django.urls import get_resolver
    from django.utils import translation

    from registry.quotas import quota_store_warm
    from registry.receipts import sign_receipt
    from registry.territories import is_territory

    get_resolver().url_patterns  # noqa: B018  (the import is the point)
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Permitted")
    sign_receipt(b"{}")
    is_territory("JP")
    cache.get("kyoka:warm")
    quota_store_warm()
