"""Network off, for a swapdeck process under test (tests/faults/test_security.py).

Put this folder on PYTHONPATH and SWAPDECK_NET_LOG in the environment: Python then
imports this module at start-up, and every attempt to reach the network (a connection,
a name lookup, a datagram, an HTTP request, a socket bound to an address) is refused
with PermissionError and written as one line to the log: the time, the pid, the event
and its arguments. Sockets of the AF_UNIX family (multiprocessing uses them) stay
allowed. Child processes inherit the environment, so they are watched too.
"""

from __future__ import annotations

import os
import socket
import sys
import time

_LOG = os.environ.get("SWAPDECK_NET_LOG")
_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sendto",
        "socket.sendmsg",
        "socket.bind",
        "urllib.Request",
        "http.client.connect",
    }
)
_ON_A_SOCKET = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"})


def _blocked(event: str, args: tuple[object, ...]) -> None:
    if event not in _NETWORK_EVENTS:
        return
    if event in _ON_A_SOCKET and args and getattr(args[0], "family", None) == socket.AF_UNIX:
        return
    with open(_LOG or os.devnull, "a", encoding="utf-8") as log:  # type: ignore[arg-type]
        log.write(f"{time.time():.6f} {os.getpid()} {event} {str(args)[:300]!r}\n")
    raise PermissionError(f"network blocked by the test ({event})")


if _LOG:
    sys.addaudithook(_blocked)
