"""Values inside configuration lines: times, ports, names, netmasks (SPEC §2, §2.2).

Owns the lexical rules of single values and nothing else: every function takes the text
of one word and returns a value or raises `ValueError` whose message is a sentence that
names the value and says what to write instead.  It never knows which command a word
belongs to (the section handlers add that) and never touches the model.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Literal

TimeUnit = Literal["ms", "s", "m", "h"]

# SPEC §2.2: a bare number means minutes for sticky `timeout`, seconds for probe and
# `timeout …` lines, milliseconds for the `sticky-store` timeout; any value may carry one.
_UNIT_SECONDS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME_RE = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,6})?)(ms|s|m|h)?", re.IGNORECASE)
MAX_TIME_S = 366 * 24 * 3600.0  # a year: anything longer is a typo, not a timeout

# SPEC §2.2 port names (ACE's).
PORT_NAMES: dict[str, int] = {"www": 80, "http": 80, "https": 443, "ftp": 21, "domain": 53, "smtp": 25}

# SPEC §2: names are up to 64 characters of [A-Za-z0-9_.-].
NAME_MAX = 64
NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
# RFC 9110 §5.6.2 token: cookie and header names.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_DIGITS_RE = re.compile(r"[0-9]{1,10}")


def parse_time(text: str, default_unit: TimeUnit) -> float:
    """`30`, `2s`, `500ms`, `1.5h` -> seconds; a bare number is in `default_unit`."""
    m = _TIME_RE.fullmatch(text)
    if m is None:
        raise ValueError(
            f'"{text}" is not a time; write a number with an optional unit ms, s, m or h '
            f"(a bare number is in {_unit_word(default_unit)})"
        )
    seconds = float(m.group(1)) * _UNIT_SECONDS[(m.group(2) or default_unit).lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f'time "{text}" must be greater than zero; write e.g. 30s')
    if seconds > MAX_TIME_S:
        raise ValueError(f'time "{text}" is longer than a year; write a shorter time (e.g. 24h)')
    return seconds


def _unit_word(unit: TimeUnit) -> str:
    return {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours"}[unit]


def parse_int(text: str, what: str, lo: int, hi: int) -> int:
    """A decimal integer in [lo, hi]; ASCII digits only."""
    if _DIGITS_RE.fullmatch(text) is None:
        raise ValueError(f'{what} "{text}" is not a number; write a whole number from {lo} to {hi}')
    value = int(text)
    if not lo <= value <= hi:
        raise ValueError(f"{what} {value} is out of range; write a whole number from {lo} to {hi}")
    return value


def parse_port(text: str, what: str = "port") -> int:
    """A TCP port number 1-65535 or one of the SPEC §2.2 port names."""
    named = PORT_NAMES.get(text.lower())
    if named is not None:
        return named
    if _DIGITS_RE.fullmatch(text) is None:
        names = ", ".join(f"{k} ({v})" for k, v in PORT_NAMES.items())
        raise ValueError(f'{what} "{text}" is not a port; write a number from 1 to 65535 or one of {names}')
    return parse_int(text, what, 1, 65535)


def check_name(text: str, what: str) -> str:
    """A configuration object name (SPEC §2): returns it, or raises with the rule."""
    if NAME_RE.fullmatch(text) is None:
        if len(text) > NAME_MAX:
            raise ValueError(
                f'{what} "{text[:NAME_MAX]}…" is {len(text)} characters long; '
                f"names are at most {NAME_MAX} characters, shorten it"
            )
        raise ValueError(
            f'{what} "{text}" is not a valid name; use 1 to {NAME_MAX} characters of '
            "letters, digits, '_', '.' and '-'"
        )
    return text


def check_token(text: str, what: str) -> str:
    """A cookie or header name: an HTTP token (RFC 9110 §5.6.2)."""
    if _TOKEN_RE.fullmatch(text) is None:
        raise ValueError(
            f'{what} "{text}" is not an HTTP token; use letters, digits and !#$%&\'*+-.^_`|~ only'
        )
    return text


def mask_to_prefix(mask: str) -> int:
    """A dotted IPv4 netmask -> prefix length; a non-contiguous mask is refused."""
    try:
        bits = int(ipaddress.IPv4Address(mask))
    except ValueError:
        raise ValueError(f'"{mask}" is not a dotted IPv4 netmask; write e.g. 255.255.255.0') from None
    prefix = bin(bits).count("1")
    if bits != ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF):
        raise ValueError(
            f'netmask "{mask}" is not contiguous (its one-bits must come first); '
            f"write e.g. {prefix_to_mask(prefix)}"
        )
    return prefix


def prefix_to_mask(prefix: int) -> str:
    """Prefix length -> dotted IPv4 netmask (for messages and `show`)."""
    return str(ipaddress.IPv4Address((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF))


# A dotted quad already in normal form (no leading zeros, each octet 0-255): it is its
# own normal form, so `ipaddress` (a few microseconds a call) is not needed for it.
_QUAD = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_NORMAL_IPV4_RE = re.compile(rf"{_QUAD}\.{_QUAD}\.{_QUAD}\.{_QUAD}")


def parse_address(text: str, what: str = "address") -> str:
    """An IPv4 or IPv6 address, normalised (`::0001` -> `::1`)."""
    if _NORMAL_IPV4_RE.fullmatch(text) is not None:
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f'{what} "{text}" is not an IPv4 or IPv6 address; write e.g. 127.0.1.11') from None


def parse_cidr(text: str, what: str = "network") -> str:
    """A network in CIDR notation (a bare address is a /32 or /128); host bits must be zero."""
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f'{what} "{text}" is not an address or CIDR network; write e.g. 10.0.0.0/8'
        ) from None
    raise ValueError(f'{what} "{text}" has host bits set; write {loose}')
