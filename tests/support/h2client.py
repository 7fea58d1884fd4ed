"""A small blocking HTTP/2 client over TLS for tests (the `h2` library as a client).

It binds to a chosen source address (127.0.0.N: stickiness tests), speaks ALPN h2, and
can send what a well-behaved client never would (attack patterns: raw frames, floods),
so tests see exactly how buddylb reacts.  Every socket is closed by `close()`.
"""
from __future__ import annotations

import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
from hyperframe.frame import ContinuationFrame, HeadersFrame, PingFrame, SettingsFrame


class H2Client:
    def __init__(self, source: str, host: str, port: int, timeout: float = 5.0, preamble: bytes = b"") -> None:
        """`preamble`: clear-text bytes before the TLS handshake (a PROXY protocol header)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        raw = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
        raw.sendall(preamble)
        self.sock = ctx.wrap_socket(raw, server_hostname="buddylb.test")
        self.alpn = self.sock.selected_alpn_protocol()
        self.authority = f"{host}:{port}"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=False))
        self.conn.initiate_connection()
        self.flush()
        self.events: list = []
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, path: str = "/", method: str = "GET", headers: list | None = None,
                body: bytes | None = None, end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [(b":method", method.encode()), (b":scheme", b"https"), (b":path", path.encode()),
                  (b":authority", self.authority.encode())]
        fields += [(k if isinstance(k, bytes) else k.encode(), v if isinstance(v, bytes) else v.encode())
                   for k, v in (headers or [])]
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        self.flush()
        if body:
            self.send_body(sid, body, end)
        return sid

    def send_body(self, sid: int, body: bytes, end: bool = True, timeout: float = 10.0) -> None:
        """DATA within the server's windows (reading its WINDOW_UPDATEs meanwhile)."""
        deadline = time.monotonic() + timeout
        view = memoryview(body)
        while view:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size, len(view))
            if room <= 0:
                if time.monotonic() > deadline or not self.pump(0.2):
                    raise TimeoutError(f"stream {sid}: the window stayed shut")
                continue
            self.conn.send_data(sid, bytes(view[:room]), end_stream=end and room == len(view))
            view = view[room:]
            self.flush()

    def pump(self, timeout: float = 0.2) -> bool:
        """Read once (up to `timeout`); False when the connection is closed."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        for ev in self.conn.receive_data(data):
            self.events.append(ev)
            if isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        self.flush()
        return True

    def response(self, sid: int, timeout: float = 5.0) -> tuple[int, dict, bytes]:
        """(status, fields, body) of stream `sid`; status -1: reset (fields: {"reset": code})."""
        deadline = time.monotonic() + timeout
        status, fields, body, done = 0, {}, b"", False
        while time.monotonic() < deadline:
            for ev in self.events:
                if getattr(ev, "stream_id", None) != sid:
                    continue
                if isinstance(ev, h2.events.ResponseReceived):
                    fields = {k: v for k, v in ev.headers}
                    status = int(fields[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                elif isinstance(ev, h2.events.TrailersReceived):
                    fields |= {k: v for k, v in ev.headers}
                elif isinstance(ev, h2.events.StreamEnded):
                    done = True
                elif isinstance(ev, h2.events.StreamReset):
                    return -1, {"reset": ev.error_code}, body
            if done:
                return status, fields, body
            status, fields, body = 0, {}, b""
            if not self.pump(0.2):
                raise ConnectionError(f"connection closed before stream {sid} ended (goaway: {self.goaway})")
        raise TimeoutError(f"stream {sid}: no complete response in {timeout} s")

    def get(self, path: str = "/", headers: list | None = None) -> tuple[int, dict, bytes]:
        return self.response(self.request(path, headers=headers))

    # -- raw frames for attack patterns ------------------------------------------------------
    def headers_frame(self, sid: int, fields: list, end_headers: bool = True, end_stream: bool = True) -> bytes:
        f = HeadersFrame(sid)
        f.data = self.conn.encoder.encode(fields)
        f.flags = {"END_STREAM"} if end_stream else set()
        if end_headers:
            f.flags.add("END_HEADERS")
        return f.serialize()

    @staticmethod
    def continuation(sid: int, data: bytes, end: bool = False) -> bytes:
        f = ContinuationFrame(sid)
        f.data = data
        if end:
            f.flags.add("END_HEADERS")
        return f.serialize()

    @staticmethod
    def ping(n: int) -> bytes:
        return PingFrame(0, opaque_data=n.to_bytes(8, "big")).serialize()

    @staticmethod
    def settings() -> bytes:
        return SettingsFrame(0, settings={}).serialize()

    def wait_closed(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump(0.2):
                return True
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
