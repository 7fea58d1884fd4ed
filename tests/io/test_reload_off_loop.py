"""A reload compiles its configuration off the event loop (issue 13 item 6): a 10k-member
farm used to stall every request for seconds during SIGHUP. The figures (20k members,
stall per request) are measured by `python -m soak.huge_farm`; here, only that the work
happens in another thread and the loop keeps turning meanwhile."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from buddylb.io import runtime
from buddylb.io.runtime import Balancer
from soak.sticky_memory import write_config

SLOW_S = 0.4  # stands for the seconds a huge farm took to compile


def test_prepare_runs_in_a_worker_thread_while_the_loop_turns(tmp_path: Path, monkeypatch) -> None:
    cfg = tmp_path / "buddylb.cfg"
    write_config(cfg, 100)
    b = Balancer(cfg, b"s" * 32)
    compiled_in: list[int] = []
    real = runtime.compile_config

    def slow_compile(config):
        compiled_in.append(threading.get_ident())
        time.sleep(SLOW_S)  # on the loop, this would block every callback for SLOW_S
        return real(config)

    monkeypatch.setattr(runtime, "compile_config", slow_compile)

    async def go() -> tuple[int, float, int]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        t = asyncio.get_running_loop().create_task(ticker())
        await asyncio.sleep(0.02)
        snap, config = await b.prepare_off_loop()
        t.cancel()
        b.commit(snap, config)
        gap = max(later - earlier for earlier, later in zip(ticks, ticks[1:]))
        return threading.get_ident(), gap, snap.generation

    loop_thread, gap, generation = asyncio.run(go())
    assert compiled_in and compiled_in[0] != loop_thread
    assert gap < SLOW_S / 2, f"the event loop stood still for {gap:.3f} s"
    assert b.snapshot.generation == generation and b.reloads == 1
