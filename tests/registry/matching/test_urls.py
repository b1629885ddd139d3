import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.matching.urls import (
    MAX_URL_LENGTH,
    InvalidURL,
    is_pattern,
    normalize_pattern,
    normalize_url,
    pattern_matches,
    url_host,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM/Cel/0042.png", "http://example.com/Cel/0042.png"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com:08443/a", "https://example.com:8443/a"),
        ("http://example.com:/a", "http://example.com/a"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/../../a", "http://example.com/a"),
        ("http://example.com/%2E%2E/a/%2e/b", "http://example.com/a/b"),
        ("http://example.com/%7euser/%2fx%3a", "http://example.com/~user/%2Fx%3A"),
        ("http://example.com/%41%2D%5F%7E", "http://example.com/A-_~"),
        ("http://example.com/café", "http://example.com/caf%C3%A9"),
        ("http://example.com/a b".replace(" ", "%20"), "http://example.com/a%20b"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com?q=1", "http://example.com/?q=1"),
        ("http://example.com/a#section-2", "http://example.com/a"),
        ("http://example.com/?b=2&a=1&a=%7e", "http://example.com/?b=2&a=1&a=~"),
        ("http://example.com/?", "http://example.com/?"),
        ("http://Bücher.Example/", "http://xn--bcher-kva.example/"),
        ("https://例え.jp/", "https://xn--r8jz45g.jp/"),
        ("http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"),
        ("http://192.0.2.1:8080/x", "http://192.0.2.1:8080/x"),
        ("  https://example.com/a  ", "https://example.com/a"),
    ],
)
def test_normalize_url_applies_rfc3986_equivalences(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


def test_equivalent_urls_normalise_equal() -> None:
    assert normalize_url("HTTP://Example.com:80/a/./b/../%7Ec#top") == normalize_url(
        "http://example.com/a/~c"
    )


def test_query_parameters_keep_their_order() -> None:
    assert normalize_url("http://example.com/?a=1&b=2") != normalize_url(
        "http://example.com/?b=2&a=1"
    )


def test_reserved_characters_are_not_decoded() -> None:
    assert normalize_url("http://example.com/a%2Fb") != normalize_url("http://example.com/a/b")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "URL is empty"),
        ("   ", "URL is empty"),
        ("ftp://example.com/file", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("mailto:someone@example.com", "only http and https"),
        ("example.com/a", "only http and https"),
        ("//example.com/a", "only http and https"),
        ("http://", "it has no host"),
        ("http:///a", "it has no host"),
        ("not a url", "spaces or control characters"),
        ("http://example.com/a b", "spaces or control characters"),
        ("http://example.com/a\x00", "spaces or control characters"),
        ("http://example.com/a\tb", "spaces or control characters"),
        ("http://example.com/%zz", "not followed by two hex digits"),
        ("http://example.com/100%", "not followed by two hex digits"),
        ("http://exa<mple.com/", "cannot parse its host or port"),
        ("http://example.com:http/", "cannot parse its host or port"),
        ("http://example.com:99999/", "port 99999 is out of range"),
        ("http://example.com:0/", "port 0 is out of range"),
        ("http://999.1.1.1/", "cannot parse its host or port"),
        ("https://user:secret@example.com/", "user name or password"),
        ("http://example.com/" + "a" * MAX_URL_LENGTH, f"longer than {MAX_URL_LENGTH}"),
        ("http://example.com/" + "é" * 1000, f"longer than {MAX_URL_LENGTH} characters once"),
    ],
)
def test_unusable_url_is_rejected_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(InvalidURL, match=re.escape(message)):
        normalize_url(raw)


def test_invalid_url_is_a_value_error() -> None:
    assert issubclass(InvalidURL, ValueError)


@pytest.mark.parametrize(
    ("normalized_url", "host"),
    [
        ("https://example.com/a", "example.com"),
        ("http://example.com:8080/a", "example.com"),
        ("http://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("https://example.com/cel/*.png$", "example.com"),
    ],
)
def test_url_host_returns_the_host_without_port(normalized_url: str, host: str) -> None:
    assert url_host(normalized_url) == host


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://example.com/cel/*.png", True),
        ("https://example.com/cel/0042.png$", True),
        ("https://example.com/search?q=*", True),
        ("https://example.com/cel/0042.png", False),
        ("https://example.com/price$10", False),
    ],
)
def test_is_pattern_means_a_star_or_a_trailing_dollar(raw: str, expected: bool) -> None:
    assert is_pattern(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "HTTPS://Example.COM:443/Cel/*/0042.PNG$",
            ("example.com", "https://example.com/Cel/*/0042.PNG$"),
        ),
        ("https://example.com/a/./b/../%7e*", ("example.com", "https://example.com/a/~*")),
        ("https://example.com/a***b", ("example.com", "https://example.com/a*b")),
        ("https://example.com$", ("example.com", "https://example.com/$")),
        ("https://example.com/a$b*", ("example.com", "https://example.com/a%24b*")),
        ("https://example.com/search?q=*", ("example.com", "https://example.com/search?q=*")),
        (
            "http://Bücher.example:8080/*",
            ("xn--bcher-kva.example", "http://xn--bcher-kva.example:8080/*"),
        ),
    ],
)
def test_normalize_pattern_normalises_like_a_url_and_keeps_wildcards(
    raw: str, expected: tuple[str, str]
) -> None:
    assert normalize_pattern(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("https://*.example.com/cel/*", "scheme and host must be written out"),
        ("https://example.*/cel/*", "scheme and host must be written out"),
        ("https://example.com:*/cel/*", "scheme and host must be written out"),
        ("*://example.com/cel/*", "scheme and host must be written out"),
        ("https://example.com/cel/0042.png", "not a pattern"),
        ("https://example.com/cel/#*", "cannot have a fragment"),
        ("ftp://example.com/*", "only http and https"),
    ],
)
def test_unusable_pattern_is_rejected(raw: str, message: str) -> None:
    with pytest.raises(InvalidURL, match=re.escape(message)):
        normalize_pattern(raw)


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        # `*` in the middle matches any sequence, including slashes.
        ("https://example.com/cel/*.png", "https://example.com/cel/0042.png", True),
        ("https://example.com/cel/*.png", "https://example.com/cel/a/b/0042.png", True),
        # Without `$` a pattern matches as a prefix (RFC 9309).
        ("https://example.com/cel/*.png", "https://example.com/cel/0042.png?size=2", True),
        ("https://example.com/cel/*", "https://example.com/cel/", True),
        # `$` anchors the end.
        ("https://example.com/cel/*.png$", "https://example.com/cel/0042.png", True),
        ("https://example.com/cel/*.png$", "https://example.com/cel/0042.png?size=2", False),
        ("https://example.com/cel/*.png$", "https://example.com/cel/0042.png.html", False),
        ("https://example.com/cel/0042.png$", "https://example.com/cel/0042.png", True),
        ("https://example.com/cel/0042.png$", "https://example.com/cel/0042.png/x", False),
        ("https://example.com/*$", "https://example.com/anything", True),
        # Matching starts at the beginning: no other host, scheme or directory.
        ("https://example.com/cel/*.png", "https://example.com/other/0042.png", False),
        ("https://example.com/cel/*.png", "http://example.com/cel/0042.png", False),
        ("https://example.com/*", "https://example.com.evil.example/x", False),
        ("https://example.com/*", "https://example.com:8443/x", False),
        ("https://example.com/cel/*.png", "https://example.com/cel/0042.jpg", False),
        # Pieces must appear in order, without overlapping.
        ("https://example.com/*ab*ba", "https://example.com/aba", False),
        ("https://example.com/*ab*ba", "https://example.com/abba", True),
        # %2A and %24 in a pattern stand for a literal * and $ in the URL.
        ("https://example.com/a%2A*", "https://example.com/a*b", True),
        ("https://example.com/a%24b*", "https://example.com/a$b/c", True),
        ("https://example.com/a%24b*", "https://example.com/ab/c", False),
    ],
)
def test_pattern_matches_with_rfc9309_semantics(pattern: str, url: str, expected: bool) -> None:
    assert pattern_matches(pattern, url) is expected


def test_pattern_matches_registered_and_checked_forms_after_normalisation() -> None:
    _, pattern = normalize_pattern("HTTPS://Example.com/Cel/*/%7Eframes/*.PNG$")
    assert pattern_matches(pattern, normalize_url("https://example.com:443/Cel/s1/~frames/7.PNG"))
    assert not pattern_matches(pattern, normalize_url("https://example.com/Cel/s1/~frames/7.png"))


def test_pattern_with_many_stars_does_not_backtrack() -> None:
    pattern = "https://example.com/" + "*a" * 50 + "*b$"
    url = "https://example.com/" + "a" * MAX_URL_LENGTH
    assert pattern_matches(pattern, url) is False


@given(
    pattern=st.text(alphabet="ab*", max_size=8),
    anchored=st.booleans(),
    path=st.text(alphabet="ab", max_size=10),
)
def test_pattern_matches_agrees_with_a_regular_expression(
    pattern: str, anchored: bool, path: str
) -> None:
    translated = ".*".join(re.escape(piece) for piece in pattern.split("*"))
    expected = re.match(translated + (r"\Z" if anchored else ""), path) is not None
    prefix = "https://example.com/"
    full_pattern = prefix + pattern + ("$" if anchored else "")
    assert pattern_matches(full_pattern, prefix + path) is expected


# --- the fast path for URLs already in normal form agrees with the full normaliser ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from registry.matching import urls as urls_module  # noqa: E402

_label = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,8}[a-zA-Z0-9]|[a-z0-9]", fullmatch=True)
_segment = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@%", max_size=8)


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https"]),
    labels=st.lists(_label, min_size=1, max_size=3),
    port=st.one_of(st.none(), st.sampled_from(["80", "443", "8080", "0", "65536", "08"])),
    segments=st.lists(st.one_of(_segment, st.sampled_from([".", ".."])), max_size=4),
    query=st.one_of(st.none(), st.text(alphabet="a=1&b?/:", max_size=8)),
    fragment=st.one_of(st.none(), st.just("frag")),
)
def test_fast_path_agrees_with_the_full_normaliser(scheme, labels, port, segments, query, fragment):
    url = f"{scheme}://{'.'.join(labels)}" + (f":{port}" if port else "") + "/" + "/".join(segments)
    url += f"?{query}" if query is not None else ""
    url += f"#{fragment}" if fragment else ""
    fast = urls_module._fast_normal_form(url)
    if fast is not None:
        normalized, host = fast
        full = _slow_normalize(url)
        assert normalized == full, (url, normalized, full)
        # The host read in the same pass is the host the full parser finds in the normal form.
        assert host == _slow_host(normalized) == urls_module.url_host(normalized)
        assert urls_module.normalize_url_and_host(url) == (full, host)


def _slow_normalize(url: str) -> str:
    fast = urls_module._fast_normal_form
    urls_module._fast_normal_form = lambda text: None
    try:
        return urls_module.normalize_url(url)
    except urls_module.InvalidURL:
        return "invalid"
    finally:
        urls_module._fast_normal_form = fast


def _slow_host(url: str) -> str:
    import rfc3986

    return rfc3986.uri_reference(url).host
