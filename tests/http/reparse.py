"""What the HTTP/1.1 request parser makes of some bytes, for the smuggling corpora: the
HTTP/1.1 one (test_smuggling_corpus.py: raw bytes refused whole and in any split) and the
HTTP/2 one (test_h2_smuggling_corpus.py: the request head a field list becomes is read
back as exactly one request).  One place, so both corpora judge by the same reading."""
from __future__ import annotations

from buddylb.errors import ProtocolError
from buddylb.http.request import BodyChunk, EndOfMessage, RequestHead, RequestParser


def run(parser: RequestParser, pieces: list[bytes]) -> tuple[list, int | None]:
    """The events of feeding `pieces` in turn, and the refusal's status (None: not refused),
    raised at once or deferred behind a complete message."""
    events: list = []
    for piece in pieces:
        try:
            events += parser.feed(piece)
        except ProtocolError as exc:
            return events, exc.status
    return events, parser.error.status if parser.error else None


def messages(events: list) -> list[tuple]:
    """Events grouped per message with bodies joined, so splits compare equal:
    (head, body, trailers or None when the message did not end)."""
    out: list[list] = []
    for event in events:
        if isinstance(event, RequestHead):
            out.append([event, b"", None])
        elif isinstance(event, BodyChunk):
            out[-1][1] += event.data
        else:
            assert isinstance(event, EndOfMessage)
            out[-1][2] = event.trailers
    return [tuple(m) for m in out]


def complete(events: list) -> list[tuple]:
    """The messages that ended (a refused message never does)."""
    return [m for m in messages(events) if m[2] is not None]


def assert_same_verdict(raw: bytes, pieces: list[bytes]) -> None:
    """`raw` fed whole and fed as `pieces` is refused alike, or read as the same messages."""
    whole_events, whole_status = run(RequestParser(), [raw])
    split_events, split_status = run(RequestParser(), pieces)
    assert split_status == whole_status
    if whole_status is None:
        assert messages(split_events) == messages(whole_events)
    else:  # forwarded-so-far may differ; finished messages may not
        assert complete(split_events) == complete(whole_events)
