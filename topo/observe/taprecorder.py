"""The recorder of ``topo up --record``: a process of its own that writes the recording.

The recorded sockets' taps (:class:`topo.process.boot.Recording`) PUSH their copies to a
PULL this process binds in the run's private directory, as
batches of copies (:mod:`topo.process.tapwire` has the format), and it writes each copy
to the MCAP file (:class:`topo.observe.recording.Recorder`). A process
rather than a thread of ``topo up``: writing MCAP is Python work per message, which would
take the supervisor's loop's interpreter lock at the rate of the run; here it takes a core
of its own, and a recorder that dies takes nothing else with it.

It speaks to the ``topo up`` that started it (:mod:`topo.supervisor.recorder`) through its
standard streams: its stdin brings one JSON line (the endpoint, the topology file's text,
the plan) and then nothing until it closes, which is the run's end; its stdout says
``{"bound": ...}`` once the copies can come and ``{"done": {...}}`` with the counts when
the file is finished. The output file is opened by ``topo up`` (which reports a file
that cannot be written before the run starts) and handed over as a descriptor.

A process at its end asks, on a ROUTER beside the PULL, whether its ``end`` is read, and
waits for the answer before it closes its PUSH (:mod:`topo.process.recordack`): a PULL
that is behind would lose what the kernel still holds once its peer hangs up.

At the end it reads until every tap that said ``on`` has said ``end`` (each process sends
what its taps hold, then ``end``, before it exits), or until :data:`END_WAIT` seconds pass
without a copy (a tap whose process was killed never ends), then writes the summary. The
wait is for silence, not from the end's start: a recorder behind a flood still has
thousands of copies queued when the run ends, and they come as fast as it reads them
(measured: a remote flood's last 2,000 copies cut off under load with a fixed second).
:data:`END_CAP` bounds it whatever comes. SIGTERM ends it the same way; the run
from its start has it in a session of its own, so a Ctrl-C in the terminal is ``topo
up``'s to handle, not its.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from topo.process.tapwire import END, ON, read_batch, unpack

#: Seconds without a copy after which the end stops waiting for the ``end`` of taps whose
#: process may have been killed.
END_WAIT = 1.0
#: Seconds the end reads at most, copies coming or not (below ``topo up``'s own bound on
#: the recorder's finish, after which it is killed).
END_CAP = 20.0
#: Messages (mostly batches of copies) read in a row before the recorder looks at its
#: stdin and the clock again.
BATCH = 100
#: Copies waiting in the PULL for the recorder beyond each tap's own queue, and the
#: PULL's high-water mark in batch messages.
QUEUED_COPIES = 10_000
RCVHWM = 1000

_ON, _END = ON.encode(), END.encode()


class _Taps:
    """Per (tap id, instance): the ``missed`` total last seen, and the ``on`` and ``end``
    markers counted (a restarted process says ``on`` again, its totals from zero)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[bytes, bytes], int] = {}
        self.pending: dict[tuple[bytes, bytes], int] = {}
        self.ons: dict[tuple[bytes, bytes], int] = {}
        self.ends: dict[tuple[bytes, bytes], int] = {}
        self.missed = 0

    def marker(self, key: tuple[bytes, bytes], direction: bytes, missed: int) -> None:
        if direction == _ON:
            self.ons[key] = self.ons.get(key, 0) + 1
            self.seen[key] = 0
            return
        self.keep(key, self.lost(key, missed))  # carried by the key's next copy
        if direction == _END:
            self.ends[key] = self.ends.get(key, 0) + 1

    def lost(self, key: tuple[bytes, bytes], missed: int) -> int:
        """Copies of ``key`` lost since the last message recorded: passed to the next."""
        new = max(0, missed - self.seen.get(key, 0))
        self.seen[key] = max(missed, self.seen.get(key, 0))
        self.missed += new
        total = self.pending.pop(key, 0) + new
        return total

    def keep(self, key: tuple[bytes, bytes], count: int) -> None:
        if count:
            self.pending[key] = count

    def all_ended(self) -> bool:
        return all(self.ends.get(k, 0) >= n for k, n in self.ons.items())

    def unended(self) -> list[str]:
        return sorted({k[1].decode(errors="replace") for k, n in self.ons.items() if self.ends.get(k, 0) < n})


def main() -> None:
    fd = int(sys.argv[1])
    sys.exit(run(fd))


def _config() -> dict[str, Any]:
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            raise SystemExit("topo recorder: no configuration on stdin")
        buf += chunk
    data = json.loads(buf.split(b"\n", 1)[0])
    if not isinstance(data, dict):
        raise SystemExit("topo recorder: the configuration is not a JSON object")
    return data


def _say(**data: Any) -> None:
    try:
        os.write(1, json.dumps(data).encode() + b"\n")
    except OSError:
        pass  # topo up is gone: the file is still finished


def run(fd: int) -> int:
    import zmq

    from topo.observe.recording import Recorder
    from topo.process.recordack import Asks
    from topo.process.tapping import RECORD_PREFIX

    config = _config()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda *_: None)  # handled by the wake-up pipe: an end
    ctx: zmq.Context[Any] = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.setsockopt(zmq.RCVHWM, RCVHWM)
    pull.bind(str(config["endpoint"]))
    # the processes ask, at their end, whether their ``end`` is read (topo.process.recordack)
    ack = ctx.socket(zmq.ROUTER)
    ack.setsockopt(zmq.LINGER, 0)
    if config.get("ack"):
        ack.bind(str(config["ack"]))
    asks = Asks()
    out = os.fdopen(fd, "wb")
    recorder = Recorder(str(config["path"]), str(config["topology_file"]), str(config["plan"]), file=out)
    _say(bound=True)
    taps = _Taps()
    prefix = RECORD_PREFIX.encode()
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    poller.register(ack, zmq.POLLIN)
    poller.register(0, zmq.POLLIN)
    poller.register(wake_r, zmq.POLLIN)
    ending_at: float | None = None
    cap = float("inf")
    bad = 0

    def read() -> bool:
        """Up to :data:`BATCH` copies; True if there may be more."""
        nonlocal bad
        for _ in range(BATCH):
            try:
                frames = pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return False
            try:
                if len(frames) == 1:
                    head = read_batch(frames[0])
                    key = (head.tap_id, head.instance)
                    if not head.tap_id.startswith(prefix):
                        raise ValueError("not a recording's tap")
                    batch = unpack(frames[0])
                    lost = taps.lost(key, head.missed)
                    name, socket = head.instance.decode(), head.tap_id[len(prefix):].decode()
                    for i, (way, copy_ns, body) in enumerate(batch):
                        try:
                            recorder.add(name, socket, way, copy_ns, body, missed=lost)
                        except ValueError:
                            taps.keep(key, lost)
                            bad += len(batch) - i - 1
                            raise
                        lost = 0
                    continue
                tap_id, instance, direction, time_ns, missed = frames[:5]
                key = (tap_id, instance)
                if not tap_id.startswith(prefix):
                    raise ValueError("not a recording's tap")
                if direction in (b"in", b"out"):
                    lost = taps.lost(key, int(missed))
                    try:
                        recorder.add(instance.decode(), tap_id[len(prefix):].decode(), direction.decode(),
                                     int(time_ns), frames[5:], missed=lost)
                    except ValueError:
                        taps.keep(key, lost)
                        raise
                else:
                    taps.marker(key, direction, int(missed))
                    if direction == _END:
                        asks.ended(tap_id, instance, time_ns)
                        answer()
            except (ValueError, UnicodeDecodeError):
                bad += 1  # a stray message on the socket: never trusted, counted
        return True

    def answer() -> None:
        for who in asks.answered():
            try:
                ack.send_multipart([who, b"", b"ok"], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # it gave up waiting

    try:
        while True:
            now = time.monotonic()
            if ending_at is not None and (taps.all_ended() or now >= min(ending_at, cap)):
                break
            wait = recorder.next_flush()
            if ending_at is not None:
                wait = min(wait if wait is not None else END_WAIT, max(0.0, ending_at - now))
            events = poller.poll(None if wait is None else max(1, int(wait * 1000)))
            for sock, _ in events:
                if sock is pull:
                    read()
                    if ending_at is not None:  # copies still come: the end waits for silence
                        ending_at = time.monotonic() + END_WAIT
                elif sock is ack:
                    while True:
                        try:
                            asks.asked(ack.recv_multipart(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                    answer()
                elif sock == 0:
                    if not os.read(0, 4096):  # topo up closed it: the run is over (or topo up is gone)
                        poller.unregister(0)
                        if ending_at is None:
                            ending_at, cap = time.monotonic() + END_WAIT, time.monotonic() + END_CAP
                elif sock == wake_r:
                    os.read(wake_r, 64)
                    if ending_at is None:
                        ending_at, cap = time.monotonic() + END_WAIT, time.monotonic() + END_CAP
            if not events:
                recorder.idle()
        while read():
            pass
    finally:
        recorder.close()
        pull.close(linger=0)
        ack.close(linger=0)
        ctx.term()
    _say(done={"messages": recorder.messages, "missed": taps.missed, "bytes": os.path.getsize(recorder.path)
                if os.path.exists(recorder.path) else 0, "unended": taps.unended(), "bad": bad})
    return 0


if __name__ == "__main__":
    main()
