"""Nodes of the recording and replay tests: a source of numbers and a sink that sums them."""

from __future__ import annotations

import hashlib
from typing import Any

END = [b"end", b""]

#: The topology these nodes make: ``{source}`` is the source's ``run:`` (and ``args:``)
#: lines, indented by four; ``{sink_args}`` the sink's ``args:``.
NUMBERS = """\
topology: numbers
nodes:
  source:
    {source}
    sockets: {{out: PUSH}}
  sink:
    run: recnodes:total
    args: {sink_args}
    on_exit: stop
    sockets: {{in: PULL}}
links:
  - source.out -> sink.in
"""


def numbers_topology(source: str, sink_args: str = "{}") -> str:
    return NUMBERS.format(source=source, sink_args=sink_args)


def source_messages(count: int) -> list[list[bytes]]:
    """What :func:`numbers` sends: ``count`` two-frame messages, then the end marker."""
    return [[b"num", str(i * i % 97).encode()] for i in range(count)] + [END]


def numbers(node: Any) -> None:
    out = node.sockets["out"]
    for frames in source_messages(node.args.get("count", 50)):
        out.send_multipart(frames)


def total(node: Any) -> None:
    """Sums the numbers until the end marker (or ``args.count`` of them); the digest is of
    their order."""
    inp = node.sockets["in"]
    limit = node.args.get("count")
    values: list[int] = []
    while limit is None or len(values) < limit:
        frames = inp.recv_multipart()
        if frames == END:
            break
        values.append(int(frames[1]))
    digest = hashlib.sha256(b",".join(str(v).encode() for v in values)).hexdigest()[:12]
    print(f"total {sum(values)} count {len(values)} digest {digest}", flush=True)


def expected(values: list[int]) -> str:
    """The line :func:`total` prints for ``values``, without its span."""
    digest = hashlib.sha256(b",".join(str(v).encode() for v in values)).hexdigest()[:12]
    return f"total {sum(values)} count {len(values)} digest {digest}"


def numbers_forever(node: Any) -> None:
    """What :func:`numbers` sends, one message every ``args.period`` seconds, until stopped."""
    out = node.sockets["out"]
    n = 0
    while node.running:
        out.send_multipart([b"num", str(n * n % 97).encode()])
        n += 1
        node.sleep(node.args.get("period", 0.01))


def drain(node: Any) -> None:
    """Receives until stopped."""
    inp = node.sockets["in"]
    while node.running:
        if inp.poll(100):
            inp.recv_multipart()
