"""How a studio proves a host, in plain words: the one wording the API and the portal both show."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from registry.hosts.proof import MAX_BODY_BYTES, Problem, problems_from_text, txt_value, well_known_url


def host_instructions(host: str, token: str) -> dict[str, Any]:
    """The two ways to prove `host`, each with the exact values to publish and what it covers."""
    value = txt_value(token)
    url = well_known_url(host)
    return {
        "dns": {
            "record_type": "TXT",
            "name": host,
            "value": value,
            "covers_subdomains": True,
            "text": _(
                "Add a TXT record to the DNS of %(host)s with the value %(value)s. It proves %(host)s and every "
                "name under it (cdn.%(host)s, for one). DNS changes can take a while to spread: ask Kyoka to "
                "look once the record is in place."
            ) % {"host": host, "value": value},
        },
        "http": {
            "url": url,
            "content": token,
            "covers_subdomains": False,
            "text": _(
                "Or publish a plain text file at %(url)s holding the token %(token)s on a line of its own, "
                "served over HTTPS on port 443 with a valid certificate, without redirects and at most %(limit)d "
                "bytes long. It proves exactly %(host)s, not the names under it."
            ) % {"url": url, "token": token, "host": host, "limit": MAX_BODY_BYTES},
        },
    }


def host_problems(host: str, last_error: str) -> list[dict[str, str]]:
    """Why the last lookup found no proof, one entry per method tried, in the active language."""
    return [_problem_row(host, problem) for problem in problems_from_text(last_error)]


def _problem_row(host: str, problem: Problem) -> dict[str, str]:
    return {"method": problem.method, "code": problem.code, "detail": problem.detail,
            "message": problem.message(host)}
