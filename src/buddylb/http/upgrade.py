"""Sans-IO rules of HTTP/1.1 `Upgrade` (RFC 9110 §7.8) for the L7 proxy (issue 16 item 1).

Owns two verdicts and nothing else: which protocols a request may ask the server to
switch to (`offer`), and whether a `101 Switching Protocols` answers that offer
(`check_switch`).  `request.py` asks `offer` once per head whose Connection names
`upgrade`; `response.py` asks `check_switch` for a 101.  The byte relay that follows a
101 is `io/l7/tunnel.py`'s; this module never touches a socket or a clock.

Decisions (SPEC §5 is silent where not quoted; README "WebSocket and Upgrade"):
- `Upgrade: h2c` is always removed (SPEC §5): buddylb speaks HTTP/1.1 to servers and
  a cleartext HTTP/2 switch behind its back would bypass every request rule.  Other
  tokens of the same field (`websocket, h2c`) are kept.
- An HTTP/1.0 request's Upgrade is ignored (RFC 9110 §7.8: a server MUST ignore it).
- A request with a body does not upgrade: its Upgrade is dropped and it is forwarded as
  a plain request.  RFC 9110 lets a server switch only after the whole body, WebSocket
  (RFC 6455 §4.1) and every deployed upgrade use a bodiless GET, Envoy refuses upgrades
  with a body, and the HTTP WG calls them a sharp edge (a server that assumes no body
  would read the body as the new protocol): the safe answer keeps the request and drops
  the switch.  `Content-Length: 0` is no body.
- Elements of Upgrade that are not `token ["/" token]` are dropped, as unknown
  Connection elements are; what is left is forwarded as one normalised line.
- A 101 must carry Upgrade, and name only protocols the request offered (RFC 9110 §7.8:
  "A server MUST NOT switch to a protocol that was not indicated by the client");
  anything else is a bad response (502).
"""
from __future__ import annotations

from buddylb.errors import ProtocolError
from buddylb.http.framing import TOKEN, Fields, field_values

__all__ = ["offer", "check_switch", "protocol_names"]

_H2C = b"h2c"


def _protocols(values: list[bytes]) -> list[bytes]:
    """`protocol = protocol-name ["/" protocol-version]` elements, as received; invalid ones skipped."""
    out = []
    for value in values:
        for item in value.split(b","):
            item = item.strip(b" \t")
            name, slash, version = item.partition(b"/")
            if TOKEN.fullmatch(name) is None or (slash and TOKEN.fullmatch(version) is None):
                continue
            out.append(item)
    return out


def protocol_names(value: bytes) -> set[bytes]:
    """The protocol names of an Upgrade value, lowercased (RFC 9110 §7.8 compares them
    case-insensitively: a server may answer `WebSocket` to `websocket`)."""
    return {p.partition(b"/")[0].lower() for p in _protocols([value])}


def offer(headers: Fields, version: tuple[int, int], bodiless: bool) -> bytes:
    """The Upgrade value to forward for a request whose Connection names `upgrade`
    (b"": this request does not upgrade, and its Upgrade field is dropped)."""
    if version != (1, 1) or not bodiless:
        return b""
    keep = [p for p in _protocols(field_values(headers, b"upgrade")) if p.partition(b"/")[0].lower() != _H2C]
    return b", ".join(keep)


def check_switch(offered: bytes, headers: Fields) -> bytes:
    """The Upgrade value of a valid 101 to a request that offered `offered` (b"": none was
    offered); raises ProtocolError(502) when the server switches on its own."""
    if not offered:
        raise ProtocolError(502, "unsolicited 101 Switching Protocols")
    chosen = _protocols(field_values(headers, b"upgrade"))
    if not chosen:
        raise ProtocolError(502, "101 Switching Protocols without a valid Upgrade field")
    allowed = protocol_names(offered)
    for p in chosen:
        if p.partition(b"/")[0].lower() not in allowed:
            raise ProtocolError(502, f"101 switches to {p.decode('latin-1')!r}, which the client did not offer")
    return b", ".join(chosen)
