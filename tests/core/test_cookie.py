"""The sticky cookie token (SPEC §5): opaque, signed, never honoured when altered."""
from __future__ import annotations

import base64
import random

from buddylb.core import cookie

SECRET = b"k" * 32


def test_round_trip_and_expiry():
    token, cid = cookie.issue(SECRET, "alpha", 1_000_000)
    assert cookie.verify(SECRET, "alpha", token, 1_000_100, 1800) == (cid, 100.0)
    assert cookie.verify(SECRET, "alpha", token, 1_000_000 + 1801, 1800) is None  # expired


def test_foreign_secret_or_scope_is_ignored():
    token, _ = cookie.issue(SECRET, "alpha", 1_000_000)
    assert cookie.verify(b"x" * 32, "alpha", token, 1_000_000, 1800) is None
    assert cookie.verify(SECRET, "beta", token, 1_000_000, 1800) is None


def test_token_holds_no_address_or_port():
    token, cid = cookie.issue(SECRET, "alpha", 1_000_000)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) == 28 and raw[:12].hex() == cid  # random id, issue time, MAC: nothing else


def test_100k_random_mutations_are_never_honoured():
    rng = random.Random(20261126)
    token, _ = cookie.issue(SECRET, "alpha", 1_000_000)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="
    honoured = 0
    for _ in range(100_000):
        chars = list(token)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            i = rng.randrange(len(chars))
            if op < 0.6:
                chars[i] = rng.choice(alphabet)
            elif op < 0.8:
                del chars[i]
            else:
                chars.insert(i, rng.choice(alphabet))
        mutated = "".join(chars)
        if mutated != token and cookie.verify(SECRET, "alpha", mutated, 1_000_000, 1800) is not None:
            # base64 padding bits: a last-character change that decodes to the same bytes is
            # the same token, not a forgery
            if base64.urlsafe_b64decode(mutated + "=" * (-len(mutated) % 4)) != \
                    base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)):
                honoured += 1
    assert honoured == 0
