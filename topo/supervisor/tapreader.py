"""The reading end of a tap, for ``topo echo``/``hz``/``sockets --rate`` and the harness's
``run.tap()``: a PULL bound in the run's private directory, the tap asked for and kept
alive through the run's supervisor, and the copies read as they come.

The lease (:data:`topo.process.tapping.LEASE`) is renewed by a thread of the reader's
own every :data:`RENEW` seconds, whatever the reader's user does between two reads; a
reader killed outright stops renewing, and its taps end by themselves. The supervisor's
word on a request that names what the run does not have is a :class:`UsageError`.
"""

from __future__ import annotations

import collections
import json
import os
import secrets
import threading
import time
from functools import partial
from itertools import repeat
from typing import Any, Callable, NamedTuple, Sequence

import zmq

from topo.errors import TopoError, UsageError
from topo.process.tapwire import END, MISSED, ON, read_batch, unpack_columns

#: Seconds between two renewals of a tap's lease (its lease is several times that).
RENEW = 1.0
#: The reader's socket's high-water mark, in messages (batches of up to
#: :data:`~topo.process.tapwire.BATCH_COPIES` copies): what waits for a reader behind,
#: beyond what the node's process holds for it. A tapped process that ends loses what its
#: own socket still holds, so the reader's takes a burst of small batches.
RCVHWM = 500
#: Renewals in a row without an answer before the run is taken for gone.
GONE_AFTER = 3


class TapMessage(NamedTuple):
    """One message a tapped socket sent (``out``) or received (``in``), with its frames."""

    instance: str
    socket: str
    direction: str
    time_ns: int
    frames: list[bytes]

    @property
    def label(self) -> str:
        return f"{self.instance}.{self.socket}"


#: A :class:`TapMessage` from a tuple of its fields, with no Python call.
_message: Callable[[tuple[str, str, str, int, list[bytes]]], TapMessage] = partial(tuple.__new__, TapMessage)


class TapReader:
    """Taps on ``targets`` (``NODE.SOCKET`` or ``INSTANCE.SOCKET``) of the run whose control
    endpoint is ``control``; copies through an ipc file in ``sockets_dir``."""

    def __init__(self, control: str, sockets_dir: str, targets: Sequence[str],
                 directions: Sequence[str] = ("in", "out"), alive: Callable[[], bool] | None = None) -> None:
        self.control = control
        self.targets = list(targets)
        self.directions = list(directions)
        self._alive = alive
        token = secrets.token_hex(5)
        self._ids = {f"{token}{i}": t for i, t in enumerate(self.targets)}
        self._path = os.path.join(sockets_dir, f"tap-{token}")
        self.endpoint = f"ipc://{self._path}"
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._pull = self._ctx.socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        # a reader behind: copies dropped in the node, counted
        self._pull.setsockopt(zmq.RCVHWM, RCVHWM)
        #: (tap id, instance) that said their tap is on.
        self.on: set[tuple[str, str]] = set()
        #: Every (tap id, instance) asked for.
        self.expected: set[tuple[str, str]] = set()
        self._missed: dict[tuple[str, str], int] = {}
        self._missed_new = 0
        #: Set once the run stopped answering (ended, or its supervisor is gone).
        self.gone = threading.Event()
        self._closing = threading.Event()
        self._renewer: threading.Thread | None = None
        #: Copies read but not yet handed out by :meth:`next` (a batch's, or read while
        #: waiting for the taps to be on).
        self._early: collections.deque[TapMessage] = collections.deque()

    # -- the taps asked for and kept -----------------------------------------------------------

    def open(self, timeout: float = 5.0) -> TapReader:
        """Binds, asks for every tap; raises on a refusal, with the run's reason."""
        self._pull.bind(self.endpoint)
        try:
            for tap_id, target in self._ids.items():
                reply = self._ask(self._request("tap", tap_id, target), timeout)
                if reply is None:
                    raise TopoError(f"the run did not answer within {timeout:g}s (asked to tap {target})")
                if not reply.get("ok"):
                    error = str(reply.get("error"))
                    raise UsageError(error) if reply.get("usage") else TopoError(error)
                self.expected.update((tap_id, str(i)) for i in reply.get("instances", []))
        except BaseException:
            self._release()
            raise
        self._renewer = threading.Thread(target=self._renew, name="topo:tap-renew", daemon=True)
        self._renewer.start()
        return self

    def _request(self, command: str, tap_id: str, target: str) -> dict[str, Any]:
        return {"cmd": command, "tap": tap_id, "target": target, "endpoint": self.endpoint,
                "directions": self.directions}

    def _ask(self, payload: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """One request on a REQ of its own (so a renewal thread and a close never share one)."""
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(self.control)
            sock.send(json.dumps(payload).encode())
            if not sock.poll(int(timeout * 1000)):
                return None
            reply = json.loads(sock.recv())
            return reply if isinstance(reply, dict) else None
        except (zmq.ZMQError, ValueError):
            return None
        finally:
            sock.close()

    def _renew(self) -> None:
        unanswered = 0
        while not self._closing.wait(RENEW):
            if self._alive is not None and not self._alive():
                self.gone.set()
                return
            answered = all(self._ask(self._request("tap", tap_id, target), 2.0) is not None
                           for tap_id, target in self._ids.items())
            unanswered = 0 if answered else unanswered + 1
            if unanswered >= GONE_AFTER or (self._alive is not None and not self._alive()):
                self.gone.set()
                return

    # -- reading ----------------------------------------------------------------------------------

    def wait_on(self, timeout: float) -> None:
        """Until every asked tap is on its socket (copies meanwhile are kept for :meth:`next`);
        raises TopoError naming those still off when ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not self.expected <= self.on:
            left = deadline - time.monotonic()
            if left <= 0 or self.gone.is_set():
                off = sorted(f"{i}.{self._ids[t].rsplit('.', 1)[1]}" for t, i in self.expected - self.on)
                raise TopoError(f"tap not on within {timeout:g}s: {', '.join(off)} (is the node running?)")
            self._read(min(left, 0.5))

    def next(self, timeout: float | None = None) -> TapMessage | None:
        """The next copy, or None after ``timeout`` seconds (None: wait for ever)."""
        early = self._early
        if early:
            return early.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            self._read(min(left, 1.0))
            if early:
                return early.popleft()
            if self.gone.is_set():
                return None

    def take_missed(self) -> int:
        """Copies lost since the last call (the node's side dropped them, a reader too slow)."""
        missed, self._missed_new = self._missed_new, 0
        return missed

    def _read(self, timeout: float) -> None:
        """One message off the PULL, its copies kept for :meth:`next` (a marker, a stray
        message or nothing in time: none)."""
        if not self._pull.poll(max(1, int(timeout * 1000))):
            return
        frames = self._pull.recv_multipart()
        if len(frames) == 1:
            self._read_batch(frames[0])
            return
        if len(frames) < 5:
            return
        tap_id, instance, direction = (f.decode(errors="replace") for f in frames[:3])
        if tap_id not in self._ids:
            return
        key = (tap_id, instance)
        try:
            time_ns, missed = int(frames[3]), int(frames[4])
        except ValueError:
            return  # never trusted: a message not of the sender's format is no copy
        self._count_missed(key, missed)
        if direction == ON:
            self.on.add(key)
            return
        if direction in (MISSED, END) or direction not in ("in", "out"):
            return
        self._early.append(TapMessage(instance, self._ids[tap_id].rsplit(".", 1)[1], direction, time_ns, frames[5:]))

    def _read_batch(self, frame: bytes) -> None:
        """A batch's copies, made into messages in C: a reader keeps up with more."""
        try:
            batch = read_batch(frame)
            tap_id, instance = batch.tap_id.decode(), batch.instance.decode()
            if tap_id not in self._ids:
                return
            directions, times, copies = unpack_columns(batch.copies, frame, batch.start)
        except ValueError:  # (UnicodeDecodeError too) never trusted: no copy
            return
        self._count_missed((tap_id, instance), batch.missed)
        socket = self._ids[tap_id].rsplit(".", 1)[1]
        self._early.extend(map(_message, zip(repeat(instance), repeat(socket), directions, times, copies)))

    def _count_missed(self, key: tuple[str, str], missed: int) -> None:
        if missed > self._missed.get(key, 0):
            self._missed_new += missed - self._missed.get(key, 0)
            self._missed[key] = missed

    # -- the end ----------------------------------------------------------------------------------

    def close(self) -> None:
        """The taps come off (at once if the run hears it, else when their lease ends)."""
        if self._closing.is_set():
            return
        self._closing.set()
        if self._renewer is not None:
            self._renewer.join(5.0)
        if not self.gone.is_set():
            for tap_id, target in self._ids.items():
                self._ask(self._request("untap", tap_id, target), 1.0)
        self._release()

    def _release(self) -> None:
        self._pull.close(linger=0)
        self._ctx.term()
        try:
            os.unlink(self._path)
        except OSError:
            pass

    def __enter__(self) -> TapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
