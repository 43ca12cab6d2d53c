"""One per process: the control connection, the node threads, and a clean exit.

Spawned by the supervisor (multiprocessing, ``spawn``), after the process's first steps
(:mod:`topo.process.prelude`: output captured, node modules being imported). Its main thread only
talks to the supervisor and starts and stops; one :class:`topo.process.wiring.Wiring` thread wires every node,
and each node instance then runs in a :class:`topo.process.runner.Runner` thread that owns its
sockets. Node sockets live in one Context (so inproc links between nodes of the process
work); the control sockets in another, so terminating the nodes' context — which
interrupts every blocking call a node is in — leaves the channel up to report how they
ended.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import zmq

from topo.process import family
from topo.process.boot import Boot
from topo.process.control import COMMANDS, CONTROL, EVENTS, Kind, Message
from topo.process.delivery import Deliveries
from topo.process.gate import InprocBoard
from topo.process.handover import Handovers
from topo.process.relink import Relinks
from topo.process.tapping import Tapping
from topo.plan.share import RUN_DIR

if TYPE_CHECKING:
    from topo.process.prelude import Prelude

#: Reconnect interval of the control sockets (ms): see ProcessRuntime.__init__.
CONTROL_RECONNECT_MS = 5


def main(boot: Boot, prelude: Prelude) -> None:
    """The child's entry point, after its first steps (:func:`topo.process.prelude.begin`)."""
    rt = ProcessRuntime(boot, prelude)
    signal.signal(signal.SIGTERM, lambda *_: rt.on_sigterm())
    code = rt.run()
    sys.stdout.flush()
    os._exit(code)


class ProcessRuntime:
    def __init__(self, boot: Boot, prelude: Prelude) -> None:
        self.boot = boot
        #: Its share of the plan: ``instances`` and ``endpoints`` as the plan has them.
        self.plan = self.process = boot.share
        self.deadline = time.monotonic() + (boot.ready_by - time.time())
        self.linger_ms = int(boot.grace * 1000)
        self.stopping = threading.Event()
        #: Connections kept open for nodes that returned, until their peers have read all.
        self.deliveries = Deliveries()
        self.table_ready = threading.Event()
        self.addresses: dict[str, str] = {
            key: self.local_address(key) for key in boot.share.endpoints
        }
        self.board = InprocBoard()
        self.ctx: zmq.Context[Any] = zmq.Context()
        self._control = zmq.Context()
        # The supervisor may bind its control sockets after starting this process
        # (topo.supervisor.prestart): an ipc connect to a socket file not there yet is retried after
        # the reconnect interval, 100 ms plus jitter by default; for the run's own local
        # channel, a few milliseconds.
        self._control.setsockopt(zmq.RECONNECT_IVL, CONTROL_RECONNECT_MS)
        self._outbox = prelude.outbox
        #: Each node's code, by instance name, its import started by the prelude.
        self.code = prelude.code
        self._sender = threading.Thread(target=self._send_loop, name="topo:outbox", daemon=True)
        self._sent = threading.Event()  # the sender sent its last message and closed
        self.capture = prelude.capture
        self._stop_reason = ""
        self._unasked_sigterm = False
        self._wakeup_r, self._wakeup_w = os.pipe()
        #: The nodes' context has been terminated (every socket closed, every linger over).
        self._ctx_done = threading.Event()
        self._term_lock = threading.Lock()
        self._term_called = False
        #: Links made or dropped on running sockets, by the threads that own them.
        self.relinks = Relinks(self.send, self.addresses)
        self.runners_by_name: dict[str, Any] = {}
        self.zap: Any = None  # the ZAP handler, for a process that serves CURVE
        #: A scale-down's feeders and removed nodes (topo.process.handover), by their threads.
        self.handovers = Handovers(self.send, self.deliveries, self.stopping, self.runner_done, self.ctx,
                                   self.linger_ms, lambda name, line: self.capture.write_line(name, line, True))

    def local_address(self, key: str) -> str:
        return self.run_path(self.plan.endpoints[key].address)

    def run_path(self, address: str) -> str:
        """A planned address with this host's run directory in it."""
        return address.replace(RUN_DIR, self.boot.run_dir)

    def send(self, message: Message) -> None:
        """Thread-safe: any thread may report; the outbox thread owns the socket."""
        message.data["gen"] = self.boot.generation
        self._outbox.put(message)

    def _send_loop(self) -> None:
        push = self._control.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0 if self.orphaned else 2000)
        push.connect(self.boot.events)
        while True:
            message = self._outbox.get()
            if message is None:
                break
            push.send_multipart(message.encode())
        push.close()
        self._sent.set()  # not is_alive(): a thread is alive a moment after its last word
        self.runner_done()  # wakes run()'s wait for the last events to go out

    def request_stop(self, reason: str) -> None:
        """Safe from a signal handler: only sets flags and writes one byte."""
        self._stop_reason = self._stop_reason or reason
        self.stopping.set()
        try:
            os.write(self._wakeup_w, b"s")
        except OSError:
            pass

    def runner_done(self) -> None:
        try:
            os.write(self._wakeup_w, b"d")
        except OSError:
            pass

    def run(self) -> int:
        from topo.process.runner import Runner
        from topo.process.wiring import Wiring

        self._sender.start()
        if self.boot.keys is not None and any(
                self.plan.endpoints[k].secure for name in self.process.instances
                for sock in self.plan.instances[name].sockets for k in sock.binds):
            from topo.process.curve import ZapHandler

            self.zap = ZapHandler(self.ctx, self.boot.keys)
            self.zap.start()
        dealer = self._control.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, self.process.name.encode())
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(self.boot.commands)
        hello = {"process": self.process.name, "pid": os.getpid(), "gen": self.boot.generation}
        dealer.send_multipart(Message(Kind.HELLO, hello).encode())
        runners = [Runner(self, self.plan.instances[name]) for name in self.process.instances]
        by_name = {r.inst.name: r for r in runners}
        self.runners_by_name = by_name
        self.tapping = Tapping({n: r.inst for n, r in by_name.items()}, lambda n: by_name[n].node_sockets,
                               self.boot.record, lambda name, line: self.capture.write_line(name, line, True))
        Wiring(self, runners).start()  # starts each node's thread when its gate opens
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        poller.register(self._wakeup_r, zmq.POLLIN)
        stop_sent = False
        give_up = float("inf")
        while not all(r.finished for r in runners) and time.monotonic() < give_up:
            if self.stopping.is_set() and not stop_sent:
                stop_sent = True
                # orphaned: nobody will escalate, and nothing may outlive the supervisor long
                give_up = time.monotonic() + (min(self.boot.grace, 0.5) if self.orphaned else self.boot.grace)
                self._stop_nodes(runners)
            wait = self.deliveries.next_look() if self.deliveries.settle() else 1.0
            wait = min(wait, self.relinks.next_deadline() - time.monotonic())
            for sock, _ in poller.poll(max(1, int(wait * 1000))):
                if sock is dealer:
                    self._command(dealer)
                else:
                    os.read(self._wakeup_r, 64)
            self.relinks.expire(time.monotonic())
        stuck = [r.inst.name for r in runners if not r.finished]
        terminated = not stuck and self._terminate_context(poller, dealer)
        if os.getppid() == self.boot.parent_pid:  # what the recording's taps hold, before the last words
            self.tapping.finish(max(1.0, min(self.boot.grace / 2, 5.0)))  # within a stop's grace
        self.capture.close()  # every partial line, and what fds 1/2 hold, before the bye
        self.send(Message(Kind.BYE, {"process": self.process.name, "clean": terminated, "stuck": stuck}))
        self._remove_ipc_files([path for r in runners for path in r.exposed])
        family.end_descendants()
        self._outbox.put(None)
        if not self._outbox_sent(poller, dealer, give_up):
            return 0  # nobody to tell, or the outbox is stuck: exit without waiting
        # the control context holds only the runtime's own sockets (a stuck node's are in
        # self.ctx): terminating it lets the BYE out before os._exit
        dealer.close()
        self._control.term()
        return 0

    def _outbox_sent(self, poller: zmq.Poller, dealer: zmq.Socket[Any], give_up: float) -> bool:
        """Waits until every queued event is sent: output a node printed is delivered
        however long the supervisor takes to read it, as long as it reads (some progress
        within ``grace + 1`` s, 5 s at least). Once a stop's grace is over (``give_up``), output is
        dropped and only the control events go; orphaned, nothing is waited for."""
        waiting_since = time.monotonic()
        while not self._sent.is_set():
            now = time.monotonic()
            if self.orphaned:
                return False
            if self.stopping.is_set() and give_up == float("inf"):
                give_up = now + self.boot.grace  # a stop that came after the nodes ended
            if now >= give_up:
                self._outbox.drop_output()
            # longer than the supervisor may leave output unread for a stalled terminal (2 s)
            stuck_at = max(self._outbox.progress, waiting_since) + max(self.boot.grace + 1, 5.0)
            if now >= stuck_at:
                return False
            until = stuck_at if now >= give_up else min(stuck_at, give_up)
            for sock, _ in poller.poll(max(1, int((until - now) * 1000))):
                if sock is dealer:
                    self._command(dealer)
                else:
                    os.read(self._wakeup_r, 64)
        return True

    def on_sigterm(self) -> None:
        """SIGTERM without a stop asked first: the kernel's word that the supervisor died
        (PR_SET_PDEATHSIG), or a kill from outside."""
        if not self.stopping.is_set():
            self._unasked_sigterm = True
        self.request_stop("SIGTERM")

    @property
    def orphaned(self) -> bool:
        """The supervisor is gone. The death signal can come while the dying supervisor's
        other threads still hold us (getppid unchanged for a moment): after an unasked
        SIGTERM, give the kernel a little time to hand us to a new parent."""
        if os.getppid() != self.boot.parent_pid:
            return True
        if not self._unasked_sigterm:
            return False
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.01)  # polling a kernel fact that has no event, with a deadline
            if os.getppid() != self.boot.parent_pid:
                return True
        self._unasked_sigterm = False  # a kill from outside: the supervisor lives
        return False

    def _remove_ipc_files(self, exposed: list[str]) -> None:
        """What libzmq would unlink on close, done here too: a node stuck at exit, or a
        supervisor killed with SIGKILL, must not leave socket files behind. ``exposed``:
        the files of external endpoints this process bound (none it only connected to)."""
        paths = exposed + [self.local_address(key)[len("ipc://"):]
                 for name in self.process.instances
                 for sock in self.plan.instances[name].sockets for key in sock.binds
                 if self.plan.endpoints[key].address.startswith("ipc://")]
        paths += [self.run_path(sock.inject)[len("ipc://"):] for name in self.process.instances
                  for sock in self.plan.instances[name].sockets if sock.inject]
        if self.orphaned:  # the supervisor's own control sockets, and its directory
            paths += [os.path.join(self.boot.run_dir, name) for name in (EVENTS, COMMANDS, CONTROL)]
        for path in paths:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self.orphaned:
            try:
                os.rmdir(self.boot.run_dir)
            except OSError:
                pass

    def _command(self, dealer: zmq.Socket[Any]) -> None:
        try:
            message = Message.decode(dealer.recv_multipart())
        except ValueError:
            return
        if message.kind is Kind.CONNECT:
            self.addresses.update(message["endpoints"])
            self.table_ready.set()
            self.board.notify()
        elif message.kind is Kind.STOP:
            self.request_stop(str(message.data.get("reason", "stop")))
        elif message.kind is Kind.TAP:
            self.tapping.request(message.data)
        elif message.kind is Kind.UNTAP:
            self.tapping.end(message["tap"])
        elif message.kind is Kind.LINK and not self.stopping.is_set():
            self.relinks.request(message.data, self.runners_by_name)
        elif message.kind is Kind.KEYS and self.zap is not None:
            self.zap.admit(message["peers"])
        elif message.kind in (Kind.RELEASE, Kind.REBIND, Kind.RETIRE) and not self.stopping.is_set():
            self.handovers.command(message, self.runners_by_name)

    def _stop_nodes(self, runners: list[Any]) -> None:
        """node.running turns false, async nodes are cancelled, blocking calls get ETERM;
        what returned nodes left undelivered is dropped."""
        self.board.notify()
        self.relinks.drop_all()
        self.handovers.drop_all()
        self.tapping.release()
        self.deliveries.drop()
        cancelled = [r for r in runners if r.interrupt()]

        def term() -> None:
            # a cancelled async node closes its own sockets; terminating the context under
            # its event loop instead would make pyzmq's poller print ContextTerminated
            for runner in cancelled:
                runner.join(min(1.0, self.boot.grace))
            self._term()

        threading.Thread(target=term, name="topo:term", daemon=True).start()

    def _terminate_context(self, poller: zmq.Poller, dealer: zmq.Socket[Any]) -> bool:
        """Lets what the nodes sent before returning out, for as long as a peer is there to
        read it (:mod:`topo.process.delivery`), while still obeying a stop, which drops it. True
        when the context ended (or nobody was left to deliver to).

        A stop drops what is held for the run's own peers (they are stopping too), not
        what a returned node's socket still lingers to send to peers outside the
        topology (:mod:`topo.process.external`): the run ending because its last node
        returned must not cut off the broker it was sending to. That linger is bounded
        by the grace period, as the stop is."""
        stopped_before = self.stopping.is_set()
        # every node has finished: no cancelled one is left for _stop_nodes to wait for,
        # and a stop that came as the last one finished has not called _stop_nodes at all
        threading.Thread(target=self._term, name="topo:term", daemon=True).start()
        while True:
            if self.stopping.is_set():
                self.deliveries.drop()
                if self._ctx_done.is_set() or not self.deliveries.lingering():
                    break
            else:
                held = self.deliveries.settle()
                if not held and (self._ctx_done.is_set()
                                 or not (self.deliveries.connected() or self.deliveries.lingering())):
                    break  # all read, or libzmq waits for peers that have gone (or, outside, too long)
            for sock, _ in poller.poll(max(1, int(self.deliveries.next_look() * 1000))):
                if sock is dealer:
                    self._command(dealer)
                else:
                    os.read(self._wakeup_r, 64)
        return stopped_before or self._ctx_done.is_set() or not self.stopping.is_set()

    def _term(self) -> None:
        """Terminates the nodes' context (it waits for every socket's linger) and says so;
        once, whoever calls first."""
        with self._term_lock:
            if self._term_called:
                return
            self._term_called = True
        self.ctx.term()
        self._ctx_done.set()
        self.runner_done()  # wakes the poll of _terminate_context