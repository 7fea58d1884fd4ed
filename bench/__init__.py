"""`make bench`: buddylb's performance figures, written to BENCHMARKS.md.

Three parts, kept apart:
- engine figures (`bench.engine`, `bench.memory`): the sans-IO decision path in one
  process, no sockets, compared with a bare dict lookup over the same keys;
- proxy figures (`bench.proxy`): buddylb and HAProxy side by side in front of the same
  nginx backends, driven by the same wrk settings, each balancer pinned to one core;
- shared sticky store figures (`bench.store`): buddylb with `sticky-store redis://...`
  against the memory store, through the proxy and, every decision a new client, in process.

`bench.run` is the entry point (`python -m bench.run [--quick] [--only SCENARIO]`);
`bench.report` renders what the others measured.  Nothing here asserts on a timing.
"""
