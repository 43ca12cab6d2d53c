"""A PAIR chain inside one OS process: stages hand messages along over inproc.

An empty message marks the end of the stream, so every stage knows when to return
without being told a count.
"""

from __future__ import annotations

from typing import Any

POLL_MS = 100
END = b""


def _recv(node: Any, sock: Any) -> bytes | None:
    """The next message, or None once the topology is stopping."""
    while node.running:
        if sock.poll(POLL_MS):
            msg: bytes = sock.recv_multipart()[0]
            return msg
    return None


def step1(node: Any) -> None:
    """Sends each word of ``words``, then the end marker."""
    out = node.sockets["out"]
    for word in node.args.get("words", ["alpha", "beta", "gamma"]):
        out.send_multipart([word.encode()])
    out.send_multipart([END])


def step2(node: Any) -> None:
    """Upper-cases what comes in on ``left`` and sends it on ``right``, end marker included."""
    left, right = node.sockets["left"], node.sockets["right"]
    while (msg := _recv(node, left)) is not None:
        right.send_multipart([msg.upper()])
        if msg == END:
            return


def step3(node: Any) -> None:
    """Prints what arrives until the end marker."""
    inp = node.sockets["in"]
    while (msg := _recv(node, inp)) not in (None, END):
        print(f"{node.name}: {msg.decode()}", flush=True)
