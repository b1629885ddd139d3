"""The key filter's bucketed table answers exactly what membership in its sorted keys answers."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.selectors.key_filter import BUCKET_BITS, _KeyTable

INT32 = st.integers(-(2**31), 2**31 - 1)
# Keys crowd the extremes and the bucket edges, where an off-by-one would hide.
EDGES = [-(2**31), 2**31 - 1, -1, 0, 1] + [
    (bucket << (32 - BUCKET_BITS)) - 2**31 + d for bucket in (1, 2, 40_000) for d in (-1, 0, 1)
]
KEY = st.one_of(INT32, st.sampled_from(EDGES))


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(KEY, max_size=300), others=st.lists(KEY, max_size=100))
def test_a_fingerprint_is_held_exactly_when_it_is_one_of_the_keys(keys, others):
    table = _KeyTable(np.unique(np.array(keys, np.int32)))
    fingerprints = np.array(keys + others, np.int32)
    assert table.contains(fingerprints).tolist() == np.isin(fingerprints, np.array(keys, np.int32)).tolist()


def test_a_crowded_bucket_and_a_million_keys_agree_with_a_plain_search():
    rng = np.random.default_rng(7)
    keys = np.unique(np.concatenate([
        rng.integers(-(2**31), 2**31, 1_000_000, dtype=np.int64),
        np.arange(5_000) - 2**31,  # one bucket holding thousands of keys
    ]).astype(np.int32))
    table = _KeyTable(keys)
    fingerprints = np.concatenate([rng.choice(keys, 5_000), rng.integers(-(2**31), 2**31, 5_000, dtype=np.int64),
                                   np.arange(6_000) - 2**31]).astype(np.int32)
    at = np.minimum(np.searchsorted(keys, fingerprints), len(keys) - 1)
    assert (table.contains(fingerprints) == (keys[at] == fingerprints)).all()
    assert table.contains(np.array([], np.int32)).tolist() == []
    assert _KeyTable(np.empty(0, np.int32)).contains(fingerprints).sum() == 0
