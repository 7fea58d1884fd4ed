"""The `make fuzz` targets, run quickly on their seeds and bounded random mutations so every
commit exercises them (the long coverage-guided runs are `make fuzz`)."""
from __future__ import annotations

import random

import pytest

from fuzz import run as fuzz_run
from fuzz import targets


def _mutations(seed: bytes, rng: random.Random, n: int):
    for _ in range(n):
        b = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            if b and rng.random() < 0.5:
                b[rng.randrange(len(b))] = rng.randrange(256)
            elif b and rng.random() < 0.5:
                del b[rng.randrange(len(b))]
            else:
                b.insert(rng.randrange(len(b) + 1), rng.choice(b"\r\n :;\t\x00\x7f\"!#-"))
        yield bytes(b)


@pytest.mark.parametrize("target", ["config", "http", "proxy"])
def test_target_survives_seeds_and_mutations(target):
    fn = getattr(targets, f"{target}_target")
    rng = random.Random(7)
    seeds = fuzz_run.seeds(target)
    assert seeds
    for seed in seeds:
        fn(seed)
        for m in _mutations(seed, rng, 20 if target == "config" else 40):
            fn(m)
