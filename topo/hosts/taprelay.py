"""An agent's end of the taps and ``topo send`` for its host's nodes: copies relayed to the
supervisor, and messages injected into a socket here, as a peer of this host would.

Taps: the supervisor's ``tap`` for one of the agent's processes comes on the control
channel with the endpoint of a reader on the supervisor's host; the agent checks it
(:func:`tap_for_process`) and passes it on with its own endpoint instead, an ipc file in
its private directory (:data:`TAPS`). The process's tap sender (:mod:`topo.process.tapping`)
PUSHes its copies there; a thread of the agent's (:class:`TapRelay`) reads them and sends
each, opaque but for its first frame (the tap's id), on a DEALER of its own to the
supervisor's taps ROUTER (:mod:`topo.supervisor.remotetaps`), CURVE like the control
channel, so copies never wait behind, or hold up, the run's control and output.

Bounded: while that DEALER has no room (the network or the supervisor behind), the relay
reads no copies (it looks for room before each), so the processes' own tap senders find
their way full and wait, or drop and count there, in the node's process (what costs the
node least); a copy that cannot go up all the same (the way gone) is dropped here and
counted, and the count reaches the reader in a ``missed`` marker under the pseudo-instance
``relay@HOST``. Nothing queues without a bound anywhere on the way.

``topo up --record``'s copies are the exception: they come on a PULL of their own and go
up on credit, never dropped (:mod:`topo.hosts.recordfeed`), read by the same thread.

``topo send``: a request names the socket, its type and the endpoint it binds on this host
(ipc here, tcp on this host's address: CURVE with the run's keys, which the agent holds);
it is checked (:func:`check_send`) and done in a short-lived thread (at most
:data:`MAX_SENDS` at once) with the same code as a local ``topo send``
(:mod:`topo.process.inject`), and the reply, or why there is none, goes back.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import zmq

from topo.errors import TopoError
from topo.process import curve
from topo.process.control import Kind, Message
from topo.process.curve import HostKeys
from topo.process.inject import INJECTORS, deliver
from topo.process.tapwire import MISSED, batch_hwm, copies_in, head
from topo.hosts.recordfeed import RecordFeed
from topo.supervisor.recordways import CREDIT, FLUSHED
from topo.supervisor.remotetaps import ANSWER, COPY, MAX_FRAME, SEND, Owed

#: The agent's ipc file its processes' taps send their copies to.
TAPS = "taps"
#: Copies waiting to be read, and to be sent up, before the processes' senders drop them.
HWM = batch_hwm(1000)  # in batch messages (topo.process.tapwire)
#: Injections at once; one more is refused (each waits up to its timeout).
MAX_SENDS = 4
#: Seconds the agent's end gives its processes' last recorded copies to go up.
FLUSH = 3.0
#: The longest a send may wait (seconds), the largest request header, the longest name.
MAX_TIMEOUT = 3600.0
MAX_HEADER = 4096
MAX_NAME = 256


def tap_for_process(frames: list[bytes], process_of: Mapping[str, str], endpoint: str) -> list[bytes] | None:
    """A ``[process, "tap", data]`` from the supervisor, with the copies' endpoint made this
    agent's; None if it is not a tap for an instance of that process (dropped)."""
    if len(frames) != 3 or frames[1] != Kind.TAP.value.encode() or len(frames[2]) > MAX_HEADER:
        return None
    try:
        message = Message.decode(frames[1:])
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    data = message.data
    target = frames[0].decode(errors="replace")
    if process_of.get(data["instance"]) != target or len(data["socket"]) > MAX_NAME:
        return None
    rewritten = {"tap": data["tap"], "instance": data["instance"], "socket": data["socket"],
                 "endpoint": endpoint, "directions": sorted(set(data["directions"]))}
    return [frames[0], *Message(Kind.TAP, rewritten).encode()]


@dataclass(frozen=True)
class Injection:
    """A checked ``topo send`` request: what to dial, as what, for how long."""

    name: str
    type: str
    address: str
    secure: bool
    timeout: float
    frames: list[bytes]


def check_send(header: bytes, frames: list[bytes], process_of: Mapping[str, str], own_dir: str,
               address: str) -> Injection:
    """The request, checked: a receiving type, a socket of one of this agent's instances,
    an endpoint on this host (an ipc file in the agent's directory, or tcp on the host's
    ``address``), a bounded timeout, at least one frame. ValueError says what is wrong."""
    if len(header) > MAX_HEADER:
        raise ValueError("header too long")
    data = json.loads(header)
    if not isinstance(data, dict):
        raise ValueError("header is not an object")
    instance, socket, kind, where = (data.get(k) for k in ("instance", "socket", "type", "address"))
    secure, timeout = data.get("secure", False), data.get("timeout")
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in (instance, socket, kind, where)):
        raise ValueError("instance, socket, type and address must be short text")
    if instance not in process_of:
        raise ValueError(f"no instance {instance!r} on this host")
    if kind not in INJECTORS:
        raise ValueError(f"cannot inject into a {kind}")
    if not isinstance(secure, bool) or isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError("secure must be true or false, timeout a number of seconds")
    if not frames:
        raise ValueError("nothing to send")
    where = _on_this_host(str(where), own_dir, address)
    return Injection(f"{instance}.{socket}", str(kind), where, secure, float(timeout), frames)


def _on_this_host(where: str, own_dir: str, address: str) -> str:
    """An endpoint of this host's, as the agent dials it; ValueError for any other."""
    if where.startswith("ipc://"):
        path = where[len("ipc://"):]
        if "/.." in path or not path.startswith(own_dir.rstrip("/") + "/"):
            raise ValueError("an ipc endpoint outside the agent's directory")
        return where
    host = address if ":" not in address or address.startswith("[") else f"[{address}]"
    for prefix in (f"tcp://{host}:", "tcp://*:", "tcp://0.0.0.0:", "tcp://[::]:"):
        if where.startswith(prefix) and where[len(prefix):].isdigit():
            return f"tcp://{host}:{where[len(prefix):]}"
    raise ValueError("an endpoint not of this host")


class TapRelay:
    """The relay's thread, its PULL (:data:`TAPS`) and its DEALER to the supervisor."""

    def __init__(self, ctx: zmq.Context[Any], directory: Path, supervisor: str, keys: HostKeys,
                 supervisor_host: str, host: str, address: str, process_of: Mapping[str, str],
                 record: bool = False) -> None:
        """``record``: the host's nodes are recorded (``topo up --record``): their copies
        come on a PULL of their own (:mod:`topo.hosts.recordfeed`)."""
        self._ctx = ctx
        self._host, self._address, self._dir = host, address, str(directory)
        self._keys, self._process_of = keys, process_of
        self.endpoint = f"ipc://{directory}/{TAPS}"
        self.pull = ctx.socket(zmq.PULL)
        self.pull.linger = 0
        self.pull.rcvhwm = HWM
        self.pull.bind(self.endpoint)
        self.up = ctx.socket(zmq.DEALER)
        self.up.linger = 0
        self.up.sndhwm = HWM
        self.up.identity = host.encode()
        self.up.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)  # what the supervisor sends: injections
        curve.dial(self.up, keys, supervisor_host)
        self.up.connect(supervisor)
        self._done_at = f"inproc://topo-sends-{id(self)}"
        self.done = ctx.socket(zmq.PULL)
        self.done.linger = 0
        self.done.bind(self._done_at)
        self.record = RecordFeed(ctx, directory) if record else None
        self._flush = False
        #: Copies read but not sent up (the way up gone), by tap id.
        self.dropped: dict[bytes, int] = {}
        #: Messages of copies sent up.
        self.sent_up = 0
        self._told: dict[bytes, int] = {}
        self._owed = Owed()
        self._sends = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="topo:tap-relay", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 2.0, flush: bool = True) -> None:
        """``flush``: what the processes recorded goes up first, while the supervisor
        takes it (:meth:`RecordFeed.flush`)."""
        self._flush = flush and self.record is not None
        self._stop.set()
        self._thread.join(timeout + (FLUSH if self._flush else 0.0))

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.up, zmq.POLLIN)
        poller.register(self.done, zmq.POLLIN)
        poller.register(self.pull, zmq.POLLIN)
        reading = True
        feed = self.record
        feeding = False  # its PULL registered
        if feed is not None:
            poller.register(feed.ack, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(100):  # 100 ms: how soon a close is seen
                    if sock is self.pull:
                        self._relay()
                    elif sock is self.done:
                        self._answered()
                    elif sock is self.up:
                        self._requests()
                    elif feed is not None and sock is feed.ack:
                        feed.asked()
                if feed is not None:  # a recording's copies: never dropped, sent on credit
                    feed.relay(self.up)
                    if feed.reading != feeding:
                        feeding = not feeding
                        if feeding:
                            poller.register(feed.pull, zmq.POLLIN)
                        else:
                            poller.unregister(feed.pull)
                # while the way up is full, the copies wait in the processes (which drop
                # and count them), not here: the PULL is not read, the DEALER polled for room
                room = bool(self.up.getsockopt(zmq.EVENTS) & zmq.POLLOUT)
                if room != reading:
                    reading = room
                    poller.register(self.up, zmq.POLLIN | (0 if room else zmq.POLLOUT))
                    if room:
                        poller.register(self.pull, zmq.POLLIN)
                    else:
                        poller.unregister(self.pull)
                if room:
                    self._tell_missed()
            if feed is not None and self._flush:
                feed.flush(self.up, self._requests, time.monotonic() + FLUSH)
        except zmq.ContextTerminated:
            pass  # the context ended under it (a supervisor's or agent's end): nothing left to relay
        finally:
            if feed is not None:
                feed.close()
            for sock in (self.pull, self.done):
                sock.close(linger=0)
            self.up.close(linger=int(FLUSH * 1000) if self._flush else 0)

    def _relay(self) -> None:
        """Copies read and sent up while the way up has room for one more: a copy is never
        read to find the way full. (It was: the DEALER holds 31 batch messages, a slow
        tap's copies come one to a batch, and after this thread went a moment without the
        CPU a burst of them could fill it; the next copy read was dropped while the
        supervisor kept up. The likely loss of the one copy of 300 a CI run missed.)"""
        for _ in range(HWM):
            if not self.up.getsockopt(zmq.EVENTS) & zmq.POLLOUT:
                return  # the way up is full: the rest waits in the processes
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self.up.send_multipart([COPY, *frames], zmq.NOBLOCK, copy=False)
                self.sent_up += 1
            except zmq.ZMQError:  # (room was there a moment ago: the supervisor's way gone)
                ids = head(frames)
                tap_id = ids[0][:64] if ids is not None else b""
                if tap_id in self.dropped or len(self.dropped) < Owed.MAX_OWED:  # made-up ids: bounded
                    self.dropped[tap_id] = self.dropped.get(tap_id, 0) + copies_in(frames)
                self._owed.add(frames)
                return  # the way up is full: the rest waits in the processes

    def _tell_missed(self) -> None:
        try:
            self._owed.flush(lambda marker: self.up.send_multipart([COPY, *marker], zmq.NOBLOCK))
        except zmq.ZMQError:
            return
        for tap_id, count in self.dropped.items():
            if self._told.get(tap_id) != count:
                marker = [tap_id, f"relay@{self._host}".encode(), MISSED.encode(), b"%d" % time.time_ns(),
                          b"%d" % count]
                try:
                    self.up.send_multipart([COPY, *marker], zmq.NOBLOCK)
                    self._told[tap_id] = count
                except zmq.ZMQError:
                    return

    # -- topo send -------------------------------------------------------------------------

    def _requests(self) -> None:
        while True:
            try:
                frames = self.up.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frames and frames[0] == CREDIT and self.record is not None:
                self.record.granted(frames)
                continue
            if frames and frames[0] == FLUSHED and self.record is not None:
                self.record.confirm(frames)
                continue
            if len(frames) < 3 or frames[0] != SEND or len(frames[1]) > 64:
                continue
            req_id = frames[1]
            try:
                job = check_send(frames[2], frames[3:], self._process_of, self._dir, self._address)
            except (ValueError, RecursionError) as err:
                self._reply(req_id, {"ok": False, "error": f"host {self._host} refused the request: {err}"}, [])
                continue
            if self._sends >= MAX_SENDS:
                self._reply(req_id, {"ok": False, "error": f"host {self._host} is busy with "
                                     f"{MAX_SENDS} sends already"}, [])
                continue
            self._sends += 1
            threading.Thread(target=self._inject, args=(req_id, job), name="topo:send", daemon=True).start()

    def _inject(self, req_id: bytes, job: Injection) -> None:
        """In a thread of its own: it may wait up to the request's timeout."""
        result: dict[str, Any]
        reply: list[bytes] = []
        try:
            keys = self._keys if job.secure else None
            got = deliver(job.type, job.address, job.name, job.frames, job.timeout, keys, self._host)
            result = {"ok": True, "replied": got is not None}
            reply = got or []
        except TopoError as err:
            result = {"ok": False, "error": str(err)}
        except Exception as err:  # noqa: BLE001 - whatever it was, the asker hears it (and the count goes down)
            result = {"ok": False, "error": f"could not reach {job.name} at {job.address}: {err}"}
        try:
            push = self._ctx.socket(zmq.PUSH)
        except zmq.ZMQError:
            return  # the agent is ending: nobody to answer
        try:
            push.connect(self._done_at)
            push.send_multipart([req_id, json.dumps(result).encode(), *reply])
        except zmq.ZMQError:
            pass
        finally:
            push.close(linger=1000)

    def _answered(self) -> None:
        while True:
            try:
                frames = self.done.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._sends -= 1
            try:
                self.up.send_multipart([ANSWER, *frames], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the way up is full: topo send says it had no answer in time

    def _reply(self, req_id: bytes, result: dict[str, Any], reply: list[bytes]) -> None:
        try:
            self.up.send_multipart([ANSWER, req_id, json.dumps(result).encode(), *reply], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
