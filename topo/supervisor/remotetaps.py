"""The supervisor's end of the taps and ``topo send`` for nodes on other hosts: copies
relayed from each host's agent to the reader's endpoint here, and messages to inject
passed to the agent of the node's host, with its reply back.

A channel of its own, apart from the run's control channel (:mod:`topo.hosts.remotes`): a
second tcp ROUTER on the local host's address, a CURVE server with the local host's key,
whose clients are the agents (one DEALER each, :mod:`topo.hosts.taprelay`), admitted by
the same ZAP handler (the run's hosts only). One thread of its own reads it, so a flood of
copies never delays what the supervisor's loop does: the control channel's events, the
nodes' output, the deadlines. What arrives is hostile until checked: the host its CURVE
handshake proved must be the one it says it is, and a copy must be for a tap asked of that
host (the way to its reader known here, from the requests the supervisor passed on).

A copy is opaque beyond its first frame, the tap's id: it is forwarded as it came, with a
non-blocking PUSH; one that the reader's way cannot take (the reader behind) is dropped
and counted, and the count reaches the reader in a ``missed`` marker of the copies' format
(:mod:`topo.process.tapping`) under the pseudo-instance ``relay`` as soon as there is room.
A way not renewed for :data:`KEEP` seconds is forgotten, as the process forgets its tap.

``topo send`` to a remote node asks on an ipc ROUTER in the run's private directory
(:data:`INJECT`): a JSON header and the frames. The request goes to the host's agent,
which dials the socket there as a peer would and answers with the reply, or why not; an
agent that does not answer within the request's timeout (and a margin) is said so.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import zmq

from topo.process import curve
from topo.process.curve import HostKeys
from topo.process.tapping import LEASE
from topo.process.tapwire import MISSED, batch_hwm, copies_in, head, owed_marker
from topo.supervisor.recordways import CREDIT, FLUSHED, RecordWays, is_record

if TYPE_CHECKING:
    from topo.process.boot import Recording

#: The file, in the run's private directory, that ``topo send`` asks on for a remote node.
INJECT = "inject"
#: Seconds a remote tap's way is kept without a renewal: the process's lease, and a margin.
KEEP = LEASE + 2.0
#: Batch messages queued towards one reader before the next ones are dropped. A process's
#: PUSH holds ``batch_hwm(1000)`` (31), and its sender waits for room; this relay cannot
#: wait, and what it is handed comes in bursts: a slow tap's copies come one to a batch,
#: and after this thread (or the context's I/O thread) went a moment without the CPU, a
#: burst of them overflowed 31 while the reader kept up (copies lost in 3 of 140 runs of a
#: 300-copy tap under load). Eight times that: up to 248 batches, 16 MiB of 64 KiB ones.
READER_HWM = 8 * batch_hwm(1000)
#: Seconds an agent has beyond a send's own timeout to answer (the way there and back).
ANSWER_MARGIN = 3.0
#: The largest frame the channel takes: a node's message as large as a file allows, plus room.
MAX_FRAME = curve.SERVED_MAX_MESSAGE + 4096
#: Messages read per turn from either socket before the other is looked at.
BATCH = 500
#: Sends waiting for their agents' answers at once; one more is refused.
MAX_PENDING = 64
#: What an agent sends first: a copy, or the answer to an injection.
COPY, ANSWER, SEND = b"c", b"r", b"s"
#: Seconds the run's end gives recorded copies still on their way to reach the recorder.
FLUSH = 3.0


class Owed:
    """The markers a relay owes its readers for the messages it dropped (what they said
    beyond their copies: a tap on, the sender's running count of misses), the last one per
    tap, instance and kind, sent again until one goes. Bounded: what a flood of made-up
    taps would add beyond :data:`MAX_OWED` is not kept."""

    MAX_OWED = 4096

    def __init__(self) -> None:
        self._markers: dict[tuple[bytes, bytes, bytes], list[bytes]] = {}

    def add(self, frames: list[Any]) -> None:
        marker = owed_marker(frames)
        if marker is not None:
            key = (marker[0], marker[1], marker[2])
            if key in self._markers or len(self._markers) < self.MAX_OWED:
                self._markers[key] = marker

    def __bool__(self) -> bool:
        return bool(self._markers)

    def flush(self, send: Callable[[list[bytes]], None]) -> None:
        """``send`` each (it raises zmq.ZMQError if it cannot: the rest waits), ``on`` first."""
        for key in sorted(self._markers, key=lambda k: k[2] != b"on"):
            send(self._markers[key])
            del self._markers[key]


@dataclass
class _Way:
    """Where a tap's copies go, and which hosts it was asked of."""

    endpoint: str
    hosts: set[str] = field(default_factory=set)
    until: float = 0.0
    push: Any = None
    dropped: int = 0
    told: int = 0
    owed: Owed = field(default_factory=Owed)


@dataclass
class _Pending:
    envelope: list[bytes]
    host: str
    deadline: float


class TapRelay:
    """The thread and its two sockets; :meth:`register` and :meth:`unregister` are called
    from the supervisor's loop."""

    def __init__(self, ctx: zmq.Context[Any], keys: HostKeys, address: str, inject: str,
                 host_of: Callable[[str], str | None], record: Recording | None = None) -> None:
        """``address``: the local host's, as a tcp endpoint wants it; ``inject``: the ipc
        endpoint ``topo send`` asks on ("" for none); ``host_of``: an instance's remote host;
        ``record``: ``topo up --record``'s recorder and sockets (:mod:`topo.supervisor.recordways`)."""
        self._ctx = ctx
        self._host_of = host_of
        self.router = ctx.socket(zmq.ROUTER)
        self.router.linger = 0
        self.router.router_mandatory = 1
        self.router.router_handover = 1  # an agent launched again for a lost host
        curve.serve(self.router, keys)
        curve.bounded(self.router, MAX_FRAME)
        self.router.ipv6 = address.startswith("[")
        self.router.bind(f"tcp://{address}:*")
        self.endpoint = self.router.last_endpoint.decode()
        self.inject: Any = None
        if inject:
            self.inject = ctx.socket(zmq.ROUTER)
            self.inject.linger = 0
            self.inject.bind(inject)
        self._ways: dict[str, _Way] = {}
        self.records = RecordWays(ctx, record.endpoint, record.sockets, host_of, record.ack) if record is not None else None
        self._pending: dict[bytes, _Pending] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: Copies from hosts that had no tap of that id (a host speaking out of turn).
        self.strays = 0
        self._thread = threading.Thread(target=self._run, name="topo:remote-taps", daemon=True)
        self._thread.start()

    # -- the supervisor's side -------------------------------------------------------------

    def register(self, tap_id: str, endpoint: str, host: str) -> None:
        """A tap (or its renewal) passed on to ``host``: its copies go to ``endpoint``."""
        with self._lock:
            way = self._ways.get(tap_id)
            if way is None:  # (a tap's id is its reader's, with its endpoint: never another)
                way = self._ways[tap_id] = _Way(endpoint)
            way.hosts.add(host)
            way.until = time.monotonic() + KEEP

    def unregister(self, tap_id: str, host: str) -> None:
        with self._lock:
            way = self._ways.get(tap_id)
            if way is not None:
                way.hosts.discard(host)
                if not way.hosts:
                    way.until = 0.0

    def close(self, timeout: float = 2.0 + FLUSH) -> None:
        self._stop.set()
        self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        if self.inject is not None:
            poller.register(self.inject, zmq.POLLIN)
        records = self.records
        waiting = False  # the recorder's PUSH polled for room
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(100):  # 100 ms: how soon a close is seen
                    if sock is self.router:
                        self._from_agents()
                    elif sock is self.inject:
                        self._requests()
                self._tend(time.monotonic())
                if records is not None:
                    self._records_turn(records)
                    if records.pending() != waiting:
                        waiting = not waiting
                        if waiting:
                            poller.register(records.push, zmq.POLLOUT)
                        else:
                            poller.unregister(records.push)
            if records is not None:
                self._flush_records(records, time.monotonic() + FLUSH)
        except zmq.ContextTerminated:
            pass  # the context ended under it (a supervisor's or agent's end): nothing left to relay
        finally:
            if records is not None and not records.push.closed:
                records.push.close(linger=0)
            for way in self._ways.values():
                if way.push is not None:
                    way.push.close(linger=0)
            self.router.close(linger=0)
            if self.inject is not None:
                self.inject.close(linger=0)

    def _from_agents(self) -> None:
        for _ in range(BATCH):
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            host = parts[0].bytes.decode(errors="replace")
            if len(parts) < 2 or _proven_host(parts[1]) != host:
                continue  # the routing id is the agent's to choose; its key is not
            kind = parts[1].bytes
            if kind == FLUSHED and self.records is not None:
                self.records.flushed.add(host)
                try:  # read, so every copy before it: the agent may close its way now
                    self.router.send_multipart([host.encode(), FLUSHED], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # gone already: it waited for nothing
            elif kind == COPY and len(parts) >= 3:
                self._copy(host, parts[2:])
            elif kind == ANSWER and len(parts) >= 4:
                pending = self._pending.get(parts[2].bytes)
                if pending is not None and pending.host == host:
                    del self._pending[parts[2].bytes]
                    self._answer(pending.envelope, parts[3:])

    def _copy(self, host: str, frames: list[zmq.Frame]) -> None:
        if self.records is not None and is_record(frames):
            if self.records.accepts(host, frames):
                self.records.copy(host, frames)
            else:
                self.strays += 1
            return
        ids = head(frames)
        if ids is None:
            self.strays += 1
            return
        tap_id = ids[0].decode(errors="replace")
        with self._lock:
            way = self._ways.get(tap_id)
            if way is None or host not in way.hosts or way.until <= 0:
                self.strays += 1
                return
        if way.push is None:
            way.push = self._ctx.socket(zmq.PUSH)
            way.push.linger = 0
            way.push.sndhwm = READER_HWM
            way.push.connect(way.endpoint)
        try:
            way.push.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:  # full (the reader behind), or gone
            way.dropped += copies_in(frames)
            way.owed.add(frames)
            return
        if way.dropped != way.told or way.owed:
            self._tell_missed(tap_id, way)

    def _tell_missed(self, tap_id: str, way: _Way) -> None:
        """The copies dropped here, as the reader counts a tap's losses: a marker with no
        frames, ``[tap, instance, "missed", time_ns, total]``, under the instance ``relay``;
        and what the dropped messages said (:class:`Owed`)."""
        try:
            way.owed.flush(lambda marker: way.push.send_multipart(marker, zmq.NOBLOCK))
        except zmq.ZMQError:
            return  # still full: told with the next copy that goes, or at the next turn
        if way.dropped == way.told:
            return
        try:
            way.push.send_multipart([tap_id.encode(), b"relay", MISSED.encode(), b"%d" % time.time_ns(),
                                     b"%d" % way.dropped], zmq.NOBLOCK)
            way.told = way.dropped
        except zmq.ZMQError:
            pass  # still full: told with the next copy that goes, or at the next turn

    def _records_turn(self, records: RecordWays) -> None:
        """Recorded copies waiting go on as the recorder takes them; each host gets its
        credits back for those gone (:mod:`topo.supervisor.recordways`)."""
        records.drain(time.monotonic())
        for host, count in records.grants():
            try:
                self.router.send_multipart([host.encode(), CREDIT, b"%d" % count], zmq.NOBLOCK)
            except zmq.Again:
                records.owed[host] = records.owed.get(host, 0) + count  # sent at the next turn
            except zmq.ZMQError:
                pass  # the agent is gone (one launched again starts with a full window)

    def _flush_records(self, records: RecordWays, deadline: float) -> None:
        """The run's end (the agents have left): the recorded copies that came, and those
        still on their way, go to the recorder before ``deadline``: until every host that
        sent some has said it sent all (a lost host's agent never does: the deadline)."""
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        while time.monotonic() < deadline:
            if not records.pending() and records.seen <= records.flushed:
                break
            if poller.poll(10):
                self._from_agents()
            records.drain(time.monotonic())
        records.close(deadline)

    def _tend(self, now: float) -> None:
        """Ways not renewed are closed; dropped counts told; sends not answered, said so."""
        with self._lock:
            gone = [tid for tid, way in self._ways.items() if way.until <= now]
            closing = [self._ways.pop(tid) for tid in gone]
            ways = list(self._ways.items())
        for way in closing:
            if way.push is not None:
                way.push.close(linger=0)
        for tap_id, way in ways:
            if way.push is not None and (way.dropped != way.told or way.owed):
                self._tell_missed(tap_id, way)
        for req_id, pending in list(self._pending.items()):
            if now >= pending.deadline:
                del self._pending[req_id]
                self._answer(pending.envelope, [json.dumps({
                    "ok": False, "error": f"no answer from host {pending.host}'s agent in time"}).encode()])

    # -- topo send -------------------------------------------------------------------------

    def _requests(self) -> None:
        """``[identity, "", header, *frames]`` from a REQ of ``topo send`` (this user's only:
        the run's directory is private); passed to the agent of the node's host."""
        for _ in range(BATCH):
            try:
                frames = self.inject.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                split = frames.index(b"")
            except ValueError:
                continue
            envelope, body = frames[:split + 1], frames[split + 1:]
            error = self._pass_on(envelope, body)
            if error:
                self._answer(envelope, [json.dumps({"ok": False, "error": error}).encode()])

    def _pass_on(self, envelope: list[bytes], body: list[bytes]) -> str:
        try:
            header = json.loads(body[0])
            instance, timeout = header["instance"], float(header["timeout"])
        except (ValueError, KeyError, TypeError, IndexError, RecursionError):
            return "malformed request"
        host = self._host_of(instance) if isinstance(instance, str) else None
        if host is None or len(body) < 2 or not 0 < timeout <= 3600:
            return "malformed request"
        if len(self._pending) >= MAX_PENDING:
            return f"{MAX_PENDING} sends to other hosts wait for their answers already; try again"
        req_id = secrets.token_bytes(8)
        try:
            self.router.send_multipart([host.encode(), SEND, req_id, *body], zmq.NOBLOCK)
        except zmq.ZMQError:
            return f"host {host}'s agent is not connected (is the host up?)"
        self._pending[req_id] = _Pending(envelope, host, time.monotonic() + timeout + ANSWER_MARGIN)
        return ""

    def _answer(self, envelope: list[bytes], frames: list[Any]) -> None:
        try:
            self.inject.send_multipart([*envelope, *frames], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            pass  # the asker is gone


def _proven_host(frame: zmq.Frame) -> str | None:
    """The host whose key a CURVE handshake proved, as the ZAP handler named it."""
    try:
        return str(frame.get("User-Id"))
    except zmq.ZMQError:
        return None
