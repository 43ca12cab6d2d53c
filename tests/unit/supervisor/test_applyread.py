"""topo apply's file read by a thread (topo.supervisor.applyread): the plan or the refusal
handed to the loop; a reading past its deadline answered as refused, its result dropped."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from topo.errors import UsageError
from topo.supervisor.applyread import Reading


def loop() -> tuple[Callable[[Callable[[], None]], None], "queue.SimpleQueue[Callable[[], None]]"]:
    soon: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
    return soon.put, soon


def test_the_plan_is_read_by_another_thread_and_handed_to_the_loop() -> None:
    call_soon, soon = loop()
    threads: list[str] = []
    got: list[Any] = []

    def reader(request: dict[str, Any], running: Any) -> Any:
        threads.append(threading.current_thread().name)
        return ("plan of", request["files"][0])

    Reading(call_soon, {"files": ["a.yaml"]}, None, reader, lambda r, out: got.append(out)).start()  # type: ignore[arg-type]
    soon.get(timeout=5)()
    assert got == [(("plan of", "a.yaml"), None)] and threads == ["topo-apply-read"]


def test_a_bad_file_is_a_refusal_and_a_late_reading_is_dropped() -> None:
    call_soon, soon = loop()
    got: list[Any] = []
    release = threading.Event()

    def bad(request: dict[str, Any], running: Any) -> Any:
        raise UsageError("no such file")

    Reading(call_soon, {}, None, bad, lambda r, out: got.append(out)).start()  # type: ignore[arg-type]
    soon.get(timeout=5)()
    assert got[0][0] is None and got[0][1]["usage"] and "no such file" in got[0][1]["error"]

    def slow(request: dict[str, Any], running: Any) -> Any:
        release.wait(5)
        return "plan"

    reading = Reading(call_soon, {}, None, slow, lambda r, out: got.append(out), deadline=0.0)  # type: ignore[arg-type]
    reading.start()
    late = reading.late(reading.deadline)
    assert late is not None and "took longer than" in late["error"] and "nothing was changed" in late["error"]
    release.set()
    soon.get(timeout=5)()  # its result comes, and is dropped
    assert len(got) == 1 and reading.late(reading.deadline + 1) is None
