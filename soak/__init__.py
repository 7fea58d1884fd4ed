"""Soak runs: the long versions of the reliability checks (`make soak`, `python -m soak.run`).

Each module is one scenario with its size as parameters; `run.py` runs them at soak
size and writes RELIABILITY.md, and the quick tests in tests/e2e run the same code at a
size that fits `make test`.  Traffic stays on 127.0.0.0/8; every process a scenario
starts is stopped in a `finally`, every load is bounded in time.
"""
