"""Router/dealer broker: many REQ clients share many REP workers through one broker."""

from __future__ import annotations

from typing import Any

import zmq

POLL_MS = 100


def client(node: Any) -> None:
    """Sends ``requests`` requests through the broker, then reports on ``done``.

    The report lets the ``tally`` node end the run once every client replica has its
    replies; a client cannot end the run itself, since the first replica to return would
    stop the others.
    """
    req = node.sockets["req"]
    for i in range(node.args.get("requests", 3)):
        req.send_multipart([f"{node.name} job {i}".encode()])
        (reply,) = req.recv_multipart()
        print(f"{node.name}: {reply.decode()}", flush=True)
    node.sockets["done"].send_multipart([node.name.encode()])


def broker(node: Any) -> None:
    """Shuttles messages between the ROUTER frontend and the DEALER backend.

    The ROUTER prefixes each request with its client's identity and the DEALER passes
    that envelope on to a REP worker and back untouched, so replies find their client.
    A poll loop rather than ``zmq.proxy``, which would never look at ``node.running``.
    """
    frontend, backend = node.sockets["frontend"], node.sockets["backend"]
    poller = zmq.Poller()
    poller.register(frontend, zmq.POLLIN)
    poller.register(backend, zmq.POLLIN)
    while node.running:
        events = dict(poller.poll(POLL_MS))
        if frontend in events:
            backend.send_multipart(frontend.recv_multipart())
        if backend in events:
            frontend.send_multipart(backend.recv_multipart())


def worker(node: Any) -> None:
    """Answers requests until the topology stops, saying which worker did the job."""
    rep = node.sockets["rep"]
    while node.running:
        if not rep.poll(POLL_MS):
            continue
        (request,) = rep.recv_multipart()
        rep.send_multipart([request + b" done by " + node.name.encode()])


def tally(node: Any) -> None:
    """Returns once ``clients`` clients have reported; with ``on_exit: stop`` that ends the run."""
    pull = node.sockets["done"]
    waiting: int = node.args.get("clients", 2)
    while waiting and node.running:
        if pull.poll(POLL_MS):
            (name,) = pull.recv_multipart()
            waiting -= 1
            node.log.info("%s finished, %d to go", name.decode(), waiting)
    print(f"{node.name}: all clients served", flush=True)
