"""Parse, validate and normalise the standard identifiers a work can be registered under.

A `WorkIdentifier` is matched exactly on `(scheme, value)`, so the value stored at registration
and the value computed for a check must be the same string however a person wrote the
identifier: with or without hyphens, spaces, dots or check characters, in any letter case.
Validation happens here too, because an identifier that fails its check digit is a typo, and a
typo must answer `invalid` rather than silently `unregistered`.

Canonical values, per scheme:

- isbn: the 13 digits of the ISBN-13; a valid ISBN-10 is converted, so both forms of one
  book are equal.
- isan: the 24 hex digits root + episode + version, upper case, without the two check
  characters (they are validated when given, and may be omitted, as the ISAN registry allows
  "in digital transactions"). A work ISAN written without a version is the same identifier as
  the one with version 0000-0000, because the ISAN registry defines the version segment as
  null (all zeros) by default. A non-zero version (a V-ISAN: a dub, an edit) is a different
  identifier: it names another version, and an owner who means to cover it registers it too.
- isrc: the 12 characters, upper case.
- iswc: "T" and the 10 digits (the last one the check digit), e.g. T0345246801.
- eidr: "10.5240/XXXX-XXXX-XXXX-XXXX-XXXX-C", upper case; the check character is required.
  Only content IDs (prefix 10.5240) identify works; party and service IDs are rejected.
- doi: "10.<registrant>/<suffix>" with ASCII letters lower-cased, since DOIs are
  case-insensitive for ASCII. Hyphens and other punctuation in a DOI are significant and kept.
- iscc: "ISCC:" and the base32 code, upper case. ISCC has no check character, so only the
  form is validated (alphabet, length, decodable, canonical padding bits).
"""

import base64
import binascii
import re
import string
import urllib.parse
from collections.abc import Callable

from django.utils.translation import gettext as _
from stdnum import isan, isbn, isrc
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError
from stdnum.iso7064 import mod_37_36

# python-stdnum implements ISBN, ISAN, ISRC and ISO 7064 Mod 37,36; it has no ISWC, EIDR, DOI
# or ISCC module, so those four are written by hand below (EIDR reuses stdnum's Mod 37,36).

SCHEMES = ("isan", "eidr", "isbn", "isrc", "iswc", "iscc", "doi")

# The longest canonical value accepted; only a DOI can get near it.
MAX_VALUE_LENGTH = 255
# The longest "scheme:value" text read at all, refused before any parsing: room for the longest
# value with a resolver prefix (https://doi.org/) and percent-encoding, nothing more.
MAX_RAW_LENGTH = 512

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_SEPARATORS = str.maketrans("", "", " -")


class InvalidIdentifier(ValueError):
    """An identifier that cannot be matched: unknown scheme, bad format or wrong check digit.

    The message is meant for people, e.g. "isbn: check digit does not match".
    """


def parse_identifier(raw: str) -> tuple[str, str]:
    """Split "scheme:value" and return the scheme with the canonical value.

    The scheme is case-insensitive and surrounding whitespace is ignored, because this is what
    people type into forms and manifests.
    """
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidIdentifier(_("longer than %(limit)d characters") % {"limit": MAX_RAW_LENGTH})
    scheme, colon, value = raw.strip().partition(":")
    if not colon:
        raise InvalidIdentifier(_("expected scheme:value, e.g. isbn:978-0-306-40615-7"))
    scheme = scheme.strip().lower()
    return scheme, normalize_identifier(scheme, value)


def normalize_identifier(scheme: str, value: str) -> str:
    """Return the canonical value of an identifier of a given scheme (one of `SCHEMES`).

    The scheme must already be lower case: it is stored next to the value and must match it.
    """
    if len(value) > MAX_RAW_LENGTH:
        raise InvalidIdentifier(
            _("%(scheme)s: longer than %(limit)d characters") % {"scheme": scheme, "limit": MAX_RAW_LENGTH}
        )
    normalizer = _NORMALIZERS.get(scheme)
    if normalizer is None:
        raise InvalidIdentifier(
            _("unknown scheme %(scheme)s; expected one of %(schemes)s")
            % {"scheme": repr(scheme), "schemes": ", ".join(SCHEMES)}
        )
    value = value.strip()
    if not value:
        raise InvalidIdentifier(_("%(scheme)s: value is empty") % {"scheme": scheme})
    canonical = normalizer(value)
    if len(canonical) > MAX_VALUE_LENGTH:
        raise InvalidIdentifier(
            _("%(scheme)s: longer than %(limit)d characters") % {"scheme": scheme, "limit": MAX_VALUE_LENGTH}
        )
    return canonical


def _stdnum(scheme: str, validate: Callable[[str], str], value: str) -> str:
    """Run a python-stdnum validator, turning its exceptions into readable messages."""
    try:
        return validate(value)
    except InvalidChecksum:
        raise InvalidIdentifier(_("%(scheme)s: check digit does not match") % {"scheme": scheme}) from None
    except InvalidLength:
        raise InvalidIdentifier(_("%(scheme)s: wrong length") % {"scheme": scheme}) from None
    except ValidationError:
        raise InvalidIdentifier(
            _("%(scheme)s: not a valid %(name)s") % {"scheme": scheme, "name": scheme.upper()}
        ) from None


def _normalize_isbn(value: str) -> str:
    return _stdnum("isbn", lambda number: isbn.validate(number, convert=True), value)


def _normalize_isrc(value: str) -> str:
    return _stdnum("isrc", isrc.validate, value)


def _normalize_isan(value: str) -> str:
    compact = value.translate(_SEPARATORS).upper().removeprefix("ISAN")
    # 16 or 24 hex digits, each form with or without its check characters. A 25-character form
    # is ambiguous (which check character is missing?), so it is refused rather than guessed.
    if len(compact) not in (16, 17, 24, 26):
        raise InvalidIdentifier(
            _("isan: expected 16 or 24 hex digits, with both check characters or neither")
        )
    _stdnum("isan", isan.validate, compact)
    return isan.compact(compact, strip_check_digits=True).ljust(24, "0")


_ISWC = re.compile(r"T(\d{9})(\d)")


def _normalize_iswc(value: str) -> str:
    compact = value.translate(_SEPARATORS).replace(".", "").upper()
    match = _ISWC.fullmatch(compact)
    if match is None:
        raise InvalidIdentifier(_("iswc: expected T followed by 10 digits, e.g. T-034.524.680-1"))
    digits, check = match.groups()
    # ISO 15707: S = 1 + sum(i * d_i) over the nine digits, check = (10 - S mod 10) mod 10.
    total = 1 + sum(position * int(digit) for position, digit in enumerate(digits, start=1))
    if (10 - total % 10) % 10 != int(check):
        raise InvalidIdentifier(_("%(scheme)s: check digit does not match") % {"scheme": "iswc"})
    return compact


_DOI_PREFIX = re.compile(r"(?:doi:|https?://(?:dx\.)?doi\.org/)", re.IGNORECASE)
_DOI = re.compile(r"10\.\d+(?:\.\d+)*/[^\s\x00-\x1f\x7f]+")


def _strip_doi_prefix(value: str) -> str:
    """Remove a "doi:" label or a doi.org resolver URL, decoding the URL's percent-encoding."""
    match = _DOI_PREFIX.match(value)
    if match is None:
        return value
    rest = value[match.end() :]
    return urllib.parse.unquote(rest) if match.group().endswith("/") else rest


def _normalize_doi(value: str) -> str:
    doi = _strip_doi_prefix(value).translate(_ASCII_LOWER)
    if _DOI.fullmatch(doi) is None:
        raise InvalidIdentifier(_("doi: expected 10.<registrant>/<suffix>, e.g. 10.1000/182"))
    return doi


_EIDR = re.compile(r"[0-9A-F]{20}[0-9A-Z]")


def _normalize_eidr(value: str) -> str:
    # An EIDR ID is a DOI, so it may come as doi:… or https://doi.org/…; the suffix alone is
    # accepted too, since the scheme already says which registry it belongs to.
    doi = _strip_doi_prefix(value).upper()
    if doi.startswith("10.") and not doi.startswith("10.5240/"):
        raise InvalidIdentifier(_("eidr: only content IDs (10.5240/…) identify works"))
    compact = doi.removeprefix("10.5240/").translate(_SEPARATORS)
    if _EIDR.fullmatch(compact) is None:
        raise InvalidIdentifier(
            _(
                "eidr: expected 10.5240/ and 20 hex digits with a check character, "
                "e.g. 10.5240/7EC7-228A-510A-053E-CBB8-J"
            )
        )
    # The check character is ISO 7064 Mod 37,36 over the 20 hex digits.
    _stdnum("eidr", mod_37_36.validate, compact)
    groups = [compact[i : i + 4] for i in range(0, 20, 4)]
    return "10.5240/" + "-".join([*groups, compact[20]])


_ISCC = re.compile(r"[A-Z2-7]{10,60}")


def _normalize_iscc(value: str) -> str:
    code = value.upper().removeprefix("ISCC:")
    if _ISCC.fullmatch(code) is None:
        raise InvalidIdentifier(_("iscc: expected ISCC: and 10 to 60 base32 characters (A-Z, 2-7)"))
    # Unpadded base32 must decode, and re-encode to itself: otherwise the trailing bits are not
    # zero and two different strings would name the same code.
    try:
        decoded = base64.b32decode(code + "=" * (-len(code) % 8))
    except binascii.Error:
        raise InvalidIdentifier(_("iscc: not valid base32")) from None
    if base64.b32encode(decoded).decode("ascii").rstrip("=") != code:
        raise InvalidIdentifier(_("iscc: not canonical base32"))
    return "ISCC:" + code


_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "isan": _normalize_isan,
    "eidr": _normalize_eidr,
    "isbn": _normalize_isbn,
    "isrc": _normalize_isrc,
    "iswc": _normalize_iswc,
    "iscc": _normalize_iscc,
    "doi": _normalize_doi,
}
