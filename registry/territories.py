"""ISO 3166-1 alpha-2 territory codes, from pycountry, loaded once."""

from __future__ import annotations

from functools import cache

import pycountry


@cache
def territory_codes() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


def is_territory(code: str) -> bool:
    return code in territory_codes()
