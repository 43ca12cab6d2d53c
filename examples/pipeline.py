"""Push/pull pipeline: a ventilator fans tasks out to workers, a sink fans results in."""

from __future__ import annotations

from collections import Counter
from typing import Any

POLL_MS = 100


def ventilator(node: Any) -> None:
    """Pushes ``tasks`` tasks and returns.

    PUSH deals messages round-robin over its connected peers; since topo calls this only
    once every worker replica is connected, the very first tasks are already spread out.
    """
    push = node.sockets["tasks"]
    for task in range(node.args.get("tasks", 12)):
        push.send_multipart([str(task).encode()])


def worker(node: Any) -> None:
    """Squares each task it pulls and pushes the result, tagged with its own name."""
    pull, push = node.sockets["tasks"], node.sockets["results"]
    me = node.name.encode()
    while node.running:
        if not pull.poll(POLL_MS):
            continue
        (task,) = pull.recv_multipart()
        push.send_multipart([me, task, str(int(task) ** 2).encode()])


def sink(node: Any) -> None:
    """Collects ``tasks`` results and prints which worker did how many."""
    pull = node.sockets["results"]
    expected: int = node.args.get("tasks", 12)
    done: Counter[str] = Counter()
    total = 0
    while sum(done.values()) < expected and node.running:
        if not pull.poll(POLL_MS):
            continue
        worker_name, _task, result = pull.recv_multipart()
        done[worker_name.decode()] += 1
        total += int(result)
    for name, n in sorted(done.items()):
        print(f"{node.name}: {name} did {n} task(s)", flush=True)
    print(f"{node.name}: {sum(done.values())}/{expected} results, sum of squares = {total}", flush=True)
