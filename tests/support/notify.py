"""A stand-in for systemd's notification socket: a real AF_UNIX datagram socket that
records each message with the sender's pid (SCM_CREDENTIALS, as systemd checks
NotifyAccess=main)."""
from __future__ import annotations

import os
import select
import socket
import struct
import time
from dataclasses import dataclass


@dataclass
class Message:
    pid: int
    fields: dict[str, str]
    at: float  # time.monotonic() at receipt


class NotifySocket:
    def __init__(self, path: str | None = None) -> None:
        """`path` None: an abstract-namespace socket, announced as '@name'."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if path is None:
            name = f"buddylb-test-notify-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind(b"\0" + name.encode())
            self.env_value = "@" + name
        else:
            self.sock.bind(path)
            self.env_value = path
        self.path = path
        self.messages: list[Message] = []

    def poll(self, timeout: float) -> None:
        """Collect what arrives within `timeout` seconds (returns early on nothing more)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return
            data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:12])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(Message(pid, fields, time.monotonic()))

    def wait(self, key: str, value: str = "1", timeout: float = 10.0, after: int = 0) -> Message:
        """The first message from index `after` on with key=value, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages[after:]:
                if m.fields.get(key) == value:
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}={value} within {timeout}s; got {[m.fields for m in self.messages]}")
            self.poll(min(left, 0.1))

    def close(self) -> None:
        self.sock.close()
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)
