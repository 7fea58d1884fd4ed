"""Run unprivileged after binding: `user NAME` / `group NAME` (SPEC §2.1) or `--user/--group`.

Order (as nginx and HAProxy): bind every listener (VIPs, admin API) as root, then drop:
supplementary groups (the user's, initgroups), gid, uid.  One capability is kept:
CAP_NET_BIND_SERVICE, so a reload that adds a VIP on port 80 or 443 still binds it
(HAProxy's `setcap cap_net_bind_service` does the same).  It is kept with prctl
PR_SET_KEEPCAPS across setuid, then capset() leaves it as the only permitted and
effective capability; nothing else of root survives (no file access beyond the user's,
no other capability, uid 0 cannot be regained: checked after the drop).

Rules: the names are looked up before anything is bound, so a typo fails the start with
`file:line`, not after the VIPs opened.  Not root and asked to become someone else is an
error; already that user (systemd `User=`) is not.  If the kernel refuses to keep the
capability (a container without it), the drop still happens and a warning says that
reloads adding a VIP below port 1024 will be refused (they fail with a clear error,
the old configuration keeps serving).  Never imports io/: the caller says when to drop.
"""
from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass
from typing import Any

from buddylb.errors import LbError

log = logging.getLogger("buddylb.privileges")

CAP_NET_BIND_SERVICE = 10  # <linux/capability.h>
PR_SET_KEEPCAPS = 8  # <linux/prctl.h>
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


@dataclass(frozen=True, slots=True)
class Identity:
    """Who `run` becomes: uid None means keep the uid (a `group` line alone)."""

    uid: int | None
    gid: int
    user: str | None
    group: str


def resolve(user: str | None, group: str | None, where_user: str = "--user", where_group: str = "--group"
            ) -> Identity | None:
    """Look the names up now (before binding); `where_*` name the config line for errors."""
    if user is None and group is None:
        return None
    pw = None
    if user is not None:
        try:
            pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except KeyError:
            raise LbError(f"{where_user}: user {user!r} does not exist on this host; create it "
                          f"(useradd --system --no-create-home --shell /usr/sbin/nologin {user}) "
                          "or name an existing user") from None
    if group is not None:
        try:
            gr = grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
        except KeyError:
            raise LbError(f"{where_group}: group {group!r} does not exist on this host; create it "
                          f"(groupadd --system {group}) or name an existing group") from None
        gid, gname = gr.gr_gid, gr.gr_name
    else:
        assert pw is not None
        gid, gname = pw.pw_gid, grp.getgrgid(pw.pw_gid).gr_name
    return Identity(pw.pw_uid if pw else None, gid, pw.pw_name if pw else None, gname)


def must_switch(who: Identity) -> bool:
    """False when already `who` (systemd User=/Group=); LbError when a switch is needed but
    impossible (not root), so `run` refuses before it binds anything."""
    if (who.uid is None or os.getuid() == who.uid == os.geteuid()) and os.getgid() == who.gid == os.getegid():
        return False
    if os.geteuid() != 0:
        target = f"user {who.user}" if who.user else f"group {who.group}"
        raise LbError(f"cannot switch to {target}: buddylb runs as uid {os.geteuid()}, not root; start it as "
                      "root (it binds every listener, then drops) or remove the user/group setting")
    return True


def runtime_modules() -> list[str]:
    """Every module `run` may import: all of buddylb but the demo and the command line."""
    import pkgutil

    import buddylb

    return [m.name for m in pkgutil.walk_packages(buddylb.__path__, "buddylb.")
            if not m.name.startswith(("buddylb.demo", "buddylb.cli", "buddylb.__main__"))]


def preload() -> int:
    """Import every module the running balancer may import later, while this process can
    still read its installation.  A few imports are made only when first needed (a
    reload's sticky carry-over, the ClientHello parser of an ssl-session VIP); after the
    drop they failed with ModuleNotFoundError when the installation was not readable by
    the new user (a checkout or venv in a 0700 directory such as one made by mktemp or
    under /root), and the reload was lost.  Returns how many modules were imported."""
    import importlib

    names = runtime_modules()
    for name in names:
        importlib.import_module(name)
    return len(names)


def drop(who: Identity) -> bool:
    """Become `who`; True when CAP_NET_BIND_SERVICE was kept (or is not needed).
    Raises LbError when the switch cannot be made (then the caller must not serve)."""
    if not must_switch(who):
        return True
    preload()
    import ctypes.util  # here: `buddylb check` looks names up and never drops

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    switching_uid = who.uid is not None and who.uid != 0
    if switching_uid:
        libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    try:
        if who.user is not None:
            os.initgroups(who.user, who.gid)
        else:
            os.setgroups([who.gid])
        os.setresgid(who.gid, who.gid, who.gid)
        if who.uid is not None:
            os.setresuid(who.uid, who.uid, who.uid)
    except OSError as exc:
        raise LbError(f"cannot switch to user {who.user} / group {who.group}: {exc}") from exc
    if not switching_uid:
        return True
    libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
    kept = _capset(libc, 1 << CAP_NET_BIND_SERVICE)
    if not kept and not _capset(libc, 0):  # root's other capabilities must not stay permitted
        raise LbError("privilege drop failed: capset() cannot clear the capabilities kept across setuid; "
                      "refusing to serve")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise LbError("privilege drop failed: uid 0 could be regained; refusing to serve")
    if not kept:
        log.warning("running as %s without CAP_NET_BIND_SERVICE: a reload adding a VIP on a port below 1024 "
                    "will be refused", who.user)
    return kept


def _capset(libc: Any, mask: int) -> bool:
    """capset(2): permitted = effective = `mask` (capabilities 0-31), inheritable = {}."""
    import ctypes

    class _CapHeader(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class _CapData(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask
    if libc.capset(ctypes.byref(header), data) != 0:
        log.debug("capset: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def capabilities(pid: int | str = "self") -> dict[str, int]:
    """CapInh/CapPrm/CapEff/CapBnd/CapAmb of a process, from /proc (for show and tests)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                out[key] = int(value.strip(), 16)
    return out


def run_as(config, user: str | None = None, group: str | None = None) -> Identity | None:
    """The identity asked for by `--user/--group` (first) or the config's `user`/`group`
    lines (`config`: config.model.Config); errors name the option or `file:line`."""
    u, g = config.user, config.group
    who = resolve(user or (u.name if u else None), group or (g.name if g else None),
                  "--user" if user else f"{config.file}:{u.line if u else 0}",
                  "--group" if group else f"{config.file}:{g.line if g else 0}")
    if who is not None:
        must_switch(who)
    return who


def unknown_names(config) -> list[tuple[int, str]]:
    """For `buddylb check` (as ExecStartPre): (line, warning) for a `user` / `group` line
    naming no account on this host.  A warning, not an error: a file may be checked on
    another machine than the one that runs it; `run` refuses such a name."""
    out = []
    for ref, kind, lookup in ((config.user, "user", pwd.getpwnam), (config.group, "group", grp.getgrnam)):
        if ref is None or ref.name.isdigit():
            continue
        try:
            lookup(ref.name)
        except KeyError:
            out.append((ref.line, f"{kind} {ref.name!r} does not exist on this host; `buddylb run` here would "
                                  f"refuse to start (create it, or check the file where it will run)"))
    return out
