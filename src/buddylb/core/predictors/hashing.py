"""`hash address [source|destination] [MASK]`: weighted rendezvous hashing.

Every (address, member) pair gets a score; the highest wins. When a member leaves the
candidate set only the clients it had move, and weights skew the score (Highest Random
Weight with -w/ln(u)).  The address is masked first so a whole subnet hashes alike.
"""
from __future__ import annotations

import math
from hashlib import blake2b
from typing import Sequence

from buddylb.core.keys import addr_int
from buddylb.core.snapshot import Farm, Member
from buddylb.core.state import RuntimeState


def _unit(value: int, member: str) -> float:
    h = blake2b(value.to_bytes(17, "big") + member.encode(), digest_size=8).digest()
    return (int.from_bytes(h, "big") + 1) / (2**64 + 2)


def choose(farm: Farm, candidates: Sequence[Member], state: RuntimeState, addrs: tuple[str, str]) -> Member:
    spec = farm.predictor
    address = addrs[0] if spec.hash_address == "source" else addrs[1]
    value, v6 = addr_int(address)
    if not v6:
        value &= 0xFFFFFFFF ^ (0xFFFFFFFF >> spec.hash_prefix4)
    return max(candidates, key=lambda m: -m.weight / math.log(_unit(value, m.rserver)))
