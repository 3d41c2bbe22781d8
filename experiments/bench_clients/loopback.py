"""Loopback only: a client of the engine benchmark installs this before its other imports, so that every
name lookup and connection to any host but this machine fails (and is noted) instead of leaving it.
Standard library only: it runs in the curator virtual environment too."""

from __future__ import annotations

import socket

_LOOPBACK = {"localhost", "::1"}
refused: list[str] = []  # hosts asked for, in order


def _check(host: object) -> None:
    name = host.decode() if isinstance(host, bytes) else str(host)
    if host is None or name in _LOOPBACK or name.startswith("127."):
        return
    refused.append(name)
    raise OSError(f"benchmark client: {name} refused, loopback only")


def refuse_other_hosts() -> None:
    lookup, connect, connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def checked_lookup(host, *args, **kwargs):
        _check(host)
        return lookup(host, *args, **kwargs)

    def checked(method):
        def call(sock: socket.socket, address, *args):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                _check(address[0])
            return method(sock, address, *args)

        return call

    socket.getaddrinfo = checked_lookup
    socket.socket.connect, socket.socket.connect_ex = checked(connect), checked(connect_ex)
