"""keys' IPv4 parser: compiled, a decimal dotted quad is read in C; every string must read
exactly as `socket.inet_aton` reads it (the uncompiled build calls inet_aton itself), and
the `address both` key built from it must round-trip through format_key/parse_key."""
from __future__ import annotations

import random
import socket

import pytest

from buddylb.core import keys

ODD = ["1.2.3.4", "255.255.255.255", "0.0.0.0", "10.0.0.1", "01.2.3.4", "1.2.3", "1.2", "16909060",
       "256.1.1.1", "1.2.3.256", "1..2.3", "1.2.3.4.", ".1.2.3.4", "0x1.2.3.4", "10.0.0.010", "1.2.3.0",
       "1.2.3.00", "00.0.0.0", " 1.2.3.4", "1.2.3.4 ", "1.2.3.\u0663", "1.2.3.-4", "", ".", "1.2.3.4.5",
       "999999999999999999999.1.1.1", "1.2.3.4x"]


def _aton(address: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_aton(address), "big")
    except OSError:
        return None


@pytest.mark.parametrize("address", ODD)
def test_v4_reads_like_inet_aton(address: str) -> None:
    want = _aton(address)
    if want is None:
        with pytest.raises(OSError):
            keys._v4(address)
    else:
        assert keys._v4(address) == want


def test_v4_random_quads() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        value = rng.getrandbits(32)
        text = ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))
        assert keys._v4(text) == value
        assert keys.addr_int(text) == (value, False)
