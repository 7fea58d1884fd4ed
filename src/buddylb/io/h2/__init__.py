"""HTTP/2 on TLS-terminated L7 VIPs (issue 16 part 2).

`fields` checks one stream's request fields (RFC 9113 §8) and turns them into the
HTTP/1.1 head the L7 exchange machine parses again; `session` is the sans-IO connection
machine over the `h2` library (streams, flow control, floods, GOAWAY); `protocol` is the
asyncio glue: the ALPN switch, the connection and one `Port` per stream.  Every stream
is one request of the existing L7 machine (`io.l7.exchange.Exchange`): decided, pooled
and logged exactly like an HTTP/1.1 request.
"""
