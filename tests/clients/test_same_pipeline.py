"""The client fingerprints and normalises exactly as the registry does."""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kyoka import fingerprints as client_fingerprints
from kyoka.urls import normalize_url as client_normalize
from kyoka.urls import pattern_matches as client_pattern_matches
from PIL import Image

from registry.matching import fingerprints as server_fingerprints
from registry.matching.urls import InvalidURL, pattern_matches
from registry.matching.urls import normalize_url as server_normalize
from tests.factories import make_image_bytes


def variants(seed: int) -> list[tuple[str, bytes]]:
    """The same scenes in the modes and containers the pipeline treats specially."""
    base = Image.open(io.BytesIO(make_image_bytes(seed)))
    out: list[tuple[str, bytes]] = []

    def save(name: str, image: Image.Image, fmt: str, **options) -> None:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        out.append((f"{seed}-{name}.{fmt.lower()}", buffer.getvalue()))

    save("rgb", base, "PNG")
    save("jpeg", base, "JPEG", quality=80)
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    save("rgba", rgba, "PNG")
    save("grey16", base.convert("L").point(lambda v: v * 200).convert("I;16"), "PNG")
    save("palette", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "GIF")
    rotated = base.copy()
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotated 90° clockwise when displayed
    save("exif", rotated, "JPEG", exif=exif.tobytes())
    return out


@pytest.mark.parametrize("seed", range(12))
def test_client_phash_equals_the_servers_on_the_same_images(tmp_path, seed):
    for name, data in variants(seed):
        path = tmp_path / name
        path.write_bytes(data)
        server = server_fingerprints.fingerprint_file(io.BytesIO(data), filename=name)
        assert client_fingerprints.sha256_file(path) == server.sha256
        assert server.phash is not None, name
        assert client_fingerprints.phash_file(path) == server_fingerprints.phash_to_hex(server.phash), name


URL_PIECES = st.sampled_from([
    "http://", "https://", "HTTPS://", "HtTp://", "example.com", "EXAMPLE.com", "xn--bcher-kva.example",
    "bücher.example",
    "127.0.0.1", "a-b.example", ":80", ":443", ":8080", ":0", ":", "/", "/a", "/./", "/../", "/b/..", "%41", "%7e",
    "%7E", "%2F", "%2f", "%20", "%", "?", "?q=1&r=%41", "#frag", "~", "@", "user:pw@", " ", "é", "//", "*", "$",
    "[::1]", ".", "..", "a.png", "%zz", "%2e%2E", "%2e", "/%2E/", "1.2.3.4", ";", "=", "/../..",
])


@settings(max_examples=3000, deadline=None)
@given(st.lists(URL_PIECES, min_size=1, max_size=9).map("".join))
# Found by a longer random run: the registry's URL library removes dot segments its own way,
# and before as well as after unreserved characters are decoded.
@example("http://HTTPS://%2e%2E/../EXAMPLE.comexample.com")
@example("HTTPS://http://:/HTTPS://%2e%2E/../")
@example("http://example.com:0")
@example("http://example.com:0/%20")
def test_client_url_normal_form_is_the_registrys_or_nothing(raw):
    ours = client_normalize(raw)
    try:
        theirs = server_normalize(raw)
    except InvalidURL:
        theirs = None
    # The client may decline (None: not permitted offline), but never disagree.
    assert ours is None or ours == theirs, (raw, ours, theirs)


def test_the_client_normalises_the_common_spellings_itself():
    assert client_normalize("HTTPS://CDN.Example.com:443/a/./b/../%7Ec.png#top") == "https://cdn.example.com/a/~c.png"
    assert client_normalize("http://example.com") == "http://example.com/"
    assert client_normalize("https://example.com/a?") == "https://example.com/a?"


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab/*$%2A4.", max_size=8), st.text(alphabet="ab/*$.", max_size=10))
def test_client_pattern_matching_is_the_registrys(pattern_tail, url_tail):
    pattern, url = "https://h.example/" + pattern_tail, "https://h.example/" + url_tail
    assert client_pattern_matches(pattern, url) == pattern_matches(pattern, url)
