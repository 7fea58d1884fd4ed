"""atheris fuzz targets: the three places hostile bytes enter buddylb.

- config: any text -> a Config or file:line diagnostics, never an exception.
- http: any bytes, split anywhere -> request events or ProtocolError, never anything else;
  and the verdict does not depend on how the bytes were split.
- proxy: any bytes, split anywhere -> a PROXY header, "wait" or BadProxyHeader, never
  anything else; the verdict and the header do not depend on the splits, and "wait"
  never outlasts the v1/v2 length bounds (an accept-proxy peer cannot hold us forever).
Each target is a plain function so `make test` can run it on the seed corpus too.
"""
from __future__ import annotations

from buddylb.config.parser import check_text
from buddylb.errors import ProtocolError
from buddylb.http.request import RequestParser
from buddylb.proxyproto import V1_MAX, V2_MAX, BadProxyHeader, parse


def config_target(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    cfg, diags = check_text(text, "fuzz.cfg")
    for d in diags:
        assert d.line >= 0 and d.file == "fuzz.cfg" and d.message, d


def _whole_and_split(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """The input after its first byte, as one read and as reads of 1-7 bytes (the first
    byte picks the size), so the fuzzer explores the splits as it explores the bytes."""
    step = data[0] % 7 + 1
    body = data[1:]
    return [body], [body[i:i + step] for i in range(0, len(body), step)]


def _verdict(chunks: list[bytes]) -> tuple:
    p = RequestParser()
    events = []
    try:
        for c in chunks:
            events.extend(type(e).__name__ for e in p.feed(c))
    except ProtocolError as exc:
        return tuple(events), exc.status
    # an error right after a complete message is deferred to `error` (RequestParser.feed)
    return tuple(events), p.error.status if p.error is not None else None


def http_target(data: bytes) -> None:
    if not data:
        return
    whole, pieces = (_verdict(reads) for reads in _whole_and_split(data))
    # the verdict (refused with which status, or accepted) must not depend on the splits
    assert whole[1] == pieces[1], (whole, pieces)


def _proxy_verdict(chunks: list[bytes]) -> object:
    """What io.proxied's gate does: parse everything received so far after each read."""
    buf = bytearray()
    for c in chunks:
        buf += c
        try:
            h = parse(buf)
        except BadProxyHeader:
            return "bad"
        if h is not None:
            return h
    assert len(buf) < (V1_MAX if buf[:1] == b"P" else V2_MAX), len(buf)
    return "wait"


def proxy_target(data: bytes) -> None:
    if not data:
        return
    whole, pieces = (_proxy_verdict(reads) for reads in _whole_and_split(data))
    # a header found in pieces is the one found whole (it may complete earlier, never differ)
    assert whole == pieces, (whole, pieces)
