"""A replaced snapshot is freed in a worker thread, never on the loop (issue 13 item 6:
freeing a 20k-member snapshot held the loop 40-60 ms), and only once no flow holds it."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from buddylb.io.retire import Retirer, dismantle, share_cpu
from buddylb.io.runtime import Balancer
from soak.sticky_memory import write_config


class Sentinel:
    """Records the thread that freed it."""

    freed_in: list[int] = []

    def __del__(self) -> None:
        Sentinel.freed_in.append(threading.get_ident())


def tree(width: int) -> dict:
    return {"farms": [{"members": tuple([Sentinel()] + [(i, str(i)) for i in range(width)])}]}


async def until(cond, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_dismantle_frees_everything_it_was_given_and_counts_what_it_held() -> None:
    Sentinel.freed_in.clear()
    box = [tree(100)]
    held = dismantle(box)
    assert box == [] and len(Sentinel.freed_in) == 1
    assert held >= 4  # the dict, the list, the inner dict, the long tuple (not the short ones)


def test_a_retired_object_is_freed_in_a_worker_thread_once_nobody_else_holds_it() -> None:
    Sentinel.freed_in.clear()

    async def go() -> int:
        r = Retirer(check_s=0.02)
        obj = tree(1000)
        flow_holds = obj  # a flow that started on the old snapshot
        r.retire(obj)
        del obj
        await asyncio.sleep(0.1)
        assert Sentinel.freed_in == [] and r.freed == 0 and len(r.retired) == 1
        del flow_holds
        await until(lambda: r.freed == 1)
        assert r.retired == []
        return threading.get_ident()

    loop_thread = asyncio.run(go())
    assert len(Sentinel.freed_in) == 1 and Sentinel.freed_in[0] != loop_thread


def test_reload_commit_retires_the_old_snapshot_off_the_loop(tmp_path: Path) -> None:
    cfg = tmp_path / "buddylb.cfg"
    write_config(cfg, 100)
    b = Balancer(cfg, b"s" * 32)

    async def go() -> None:
        snap, config = await b.prepare_off_loop()
        b.commit(snap, config)
        assert len(b.retirer.retired) == 1  # taken over, not freed by the assignment
        await until(lambda: b.retirer.freed == 1)

    asyncio.run(go())
    assert b.reloads == 1 and b.retirer.retired == []


def test_share_cpu_restores_the_switch_interval_once_the_last_worker_ends() -> None:
    import sys

    before = sys.getswitchinterval()
    with share_cpu():
        with share_cpu():
            assert sys.getswitchinterval() <= 0.001
        assert sys.getswitchinterval() <= 0.001  # the outer worker still runs
    assert sys.getswitchinterval() == before
