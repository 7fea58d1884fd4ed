"""`serverfarm host NAME`, its `predictor`, `probe`, `fail-action`, `send-proxy` lines and its
`rserver NAME [PORT]` memberships with their own sub-mode (SPEC §2.1).

Owns the words of these lines; it never resolves the rserver or probe names it records
(references may come before definitions; `config.validate` resolves them).
"""

from __future__ import annotations

from typing import Any

from buddylb.config import units
from buddylb.config.grammar import Args, Command, LineError, block, keep, one_word
from buddylb.config.model import FarmMember, InbandSpec, Predictor, Ref, Serverfarm
from buddylb.config.sections.notes import SERVERS_SEE_US, mapped, unused
from buddylb.config.sections.rserver import SERVICE_COMMANDS
from buddylb.config.session import ParseSession, claim_name

_PREDICTOR_SYNTAX = "predictor roundrobin | leastconns | hash address [source|destination] [MASK]"


def _buddy_group(_s: ParseSession, fm: FarmMember, a: Args) -> None:
    # SPEC §1: one membership belongs to at most one buddy real group (`once`).
    fm.buddy_group = a.name("buddy real group name")
    fm.buddy_group_line = a.number
    a.end()


def _backup(_s: ParseSession, fm: FarmMember, a: Args) -> None:
    a.end()
    fm.backup = True


MEMBER = block(
    "serverfarm rserver",
    {
        "buddy-group": Command("buddy-group NAME", _buddy_group, once="buddy-group"),
        "backup": Command("backup", _backup, once="backup"),
    },
    SERVICE_COMMANDS,
)


def _member(s: ParseSession, farm: Serverfarm, a: Args) -> FarmMember:
    name = a.name("rserver name")
    port = a.port("rserver port") if a.more() else None
    # Indexed by (context, farm, rserver, port) in the session's table of first lines: a
    # scan of farm.members here made a 20k-member farm take 14 s to check (issue 13 item 6).
    key = ("serverfarm rserver", s.current or "", farm.name, name, str(port))
    first = s.once.get(key)
    if first is not None:
        where = f"port {port}" if port is not None else "the VIP's port"
        raise LineError(
            f'rserver "{name}" on {where} is already in serverfarm "{farm.name}" (line {first}); '
            "remove one of the two entries"
        )
    s.once[key] = a.number
    fm = FarmMember(name=name, line=a.number, port=port)
    farm.members.append(fm)
    with keep(fm):
        a.end()
    return fm


def _predictor(_s: ParseSession, farm: Serverfarm, a: Args) -> None:
    kind = a.keyword("predictor", ("roundrobin", "leastconns", "hash"))
    pred = Predictor(line=a.number)
    if kind == "hash":
        if a.accept("address") is None:
            got = f' "{a.word("hash kind")}"' if a.more() else ""
            raise LineError(f'buddylb hashes client addresses only, not{got}; write "{_PREDICTOR_SYNTAX}"')
        pred.kind = "hash"
        side = a.accept("source", "destination")
        if side == "destination":
            pred.hash_address = "destination"
        if a.more():
            mask = a.word("netmask")
            try:
                units.mask_to_prefix(mask)
            except ValueError as exc:
                raise LineError(f"predictor hash {exc}") from None
            pred.hash_mask = mask
    else:
        pred.kind = "roundrobin" if kind == "roundrobin" else "leastconns"
        if kind == "leastconns" and a.accept("slowstart"):
            pred.slowstart_s = a.time("slowstart", "s")  # core.predictors.leastconns: ramp
    a.end()
    farm.predictor = pred


def _probe(_s: ParseSession, farm: Serverfarm, a: Args) -> None:
    name = a.name("probe name")
    a.end()
    for ref in farm.probes:
        if ref.name == name:
            raise LineError(
                f'probe "{name}" is already attached to serverfarm "{farm.name}" on line {ref.line}; '
                "remove one of the two lines"
            )
    farm.probes.append(Ref(name, a.number))


def _inband(_s: ParseSession, farm: Serverfarm, a: Args) -> None:
    """ACE's passive health check (core.inband): reset is in milliseconds, as on the ACE."""
    mode = a.keyword("inband-health check", ("count", "log", "remove"))
    spec = InbandSpec(mode)
    if mode != "count":
        threshold = a.integer("failure threshold", 1, 65535)
        reset_ms = a.integer("reset", 100, 300000) if a.accept("reset") else 100
        resume = a.integer("resume-service", 30, 3600) if mode == "remove" and a.accept("resume-service") else 0
        spec = InbandSpec(mode, threshold, reset_ms / 1000.0, float(resume))
    a.end()
    farm.inband = spec


def _send_proxy(_s: ParseSession, farm: Serverfarm, a: Args) -> None:
    """SPEC §2.1: every server connection of the farm opens with a PROXY protocol header."""
    version = a.keyword("PROXY protocol version", ("v1", "v2"))
    a.end()
    farm.send_proxy = 1 if version == "v1" else 2


def _fail_action(_s: ParseSession, farm: Serverfarm, a: Args) -> None:
    a.end()
    farm.fail_action_purge = True


FARM = block(
    "serverfarm host",
    {
        "predictor": Command(_PREDICTOR_SYNTAX, _predictor, once="predictor"),
        "probe": Command("probe NAME", _probe, claims=one_word),
        "fail-action purge": Command("fail-action purge", _fail_action, once="fail-action"),
        "send-proxy": Command("send-proxy v1|v2", _send_proxy, once="send-proxy"),
        "failaction purge": Command("failaction purge", _fail_action, once="fail-action", hidden=True),
        "rserver": Command("rserver NAME [PORT]", _member, block=MEMBER, claims=lambda r: r[:1] != ("host",)),
        "transparent": mapped("transparent", f'"transparent" (no destination NAT): {SERVERS_SEE_US}'),
        "inband-health check": Command(
            "inband-health check count|log N [reset MS]|remove N [reset MS] [resume-service S]", _inband,
            once="inband-health"),
        "failaction reassign": mapped(
            "failaction reassign",
            '"failaction reassign": open connections of a failed rserver finish; new ones go elsewhere',
        ),
        "retcode": unused("retcode"),
        "partial-threshold": unused("partial-threshold"),
        "fail-on-all": mapped(
            "fail-on-all",
            '"fail-on-all" is not done: an rserver is failed while any of its probes is failed',
            "unsupported",
        ),
    },
)


def _serverfarm_host(s: ParseSession, _target: Any, a: Args) -> Serverfarm:
    ctx = s.context(a.number)
    name = a.name("serverfarm name")
    claim_name({"serverfarm host": ctx.farms}, name, "serverfarm host")
    farm = ctx.farms[name] = Serverfarm(name=name, line=a.number)
    with keep(farm):
        a.end()
    return farm


def _nothing(_s: ParseSession, target: Any, _a: Args) -> Any:
    return target


_REDIRECT_MEMBER = block("redirect rserver", {w: Command(f"{w} ...", _nothing) for w in ("inservice", "weight", "no")})
_REDIRECT = block(
    "serverfarm redirect",
    {w: Command(f"{w} ...", _nothing) for w in ("predictor", "probe", "description", "failaction", "fail-action")},
    {"rserver": Command("rserver NAME", _nothing, block=_REDIRECT_MEMBER)},
    swallow=True,
)


def _redirect(s: ParseSession, _target: Any, a: Args) -> None:
    s.mapping("serverfarm redirect", a.number, '"serverfarm redirect" (a farm of ACE redirect servers) is not done; '
              "a policy that uses it is refused", "unsupported")


TOP: dict[str, Command] = {
    "serverfarm host": Command("serverfarm host NAME", _serverfarm_host, block=FARM),
    "serverfarm redirect": Command("serverfarm redirect NAME", _redirect, block=_REDIRECT),
    # `serverfarm NAME`: host is ACE's default type
    "serverfarm": Command("serverfarm [host] NAME", _serverfarm_host, block=FARM, claims=lambda r: len(r) == 1),
}
