"""Weather updates, after the zguide: Python subscribers of the C weather server
(examples/polyglot/wuserver.c, an exec node), and a Python station that publishes the
same updates to the C client (examples/polyglot/wuclient.c).

An update is one string, ``"ZIPCODE TEMPERATURE HUMIDITY"``; the publisher ends its
stream with ``"END"``.
"""

from __future__ import annotations

from typing import Any

POLL_MS = 100


def client(node: Any) -> None:
    """Takes updates until ``END``, then prints the first, how many and their average
    temperature. Which zip codes it gets is its SUB's ``subscribe:`` in the file (ZeroMQ
    filters at the publisher, C or Python alike)."""
    sub = node.sockets["updates"]
    first = ""
    got = total = 0
    while node.running:
        if not sub.poll(POLL_MS):
            continue
        update = sub.recv_string()
        if update == "END":
            break
        _zipcode, temperature, _humidity = update.split()
        first = first or update
        got += 1
        total += int(temperature)
    print(f"{node.name}: first update: {first}", flush=True)
    average = f"{total / got:.1f}F" if got else "n/a"
    print(f"{node.name}: {got} updates, average temperature {average}", flush=True)


def station(node: Any) -> None:
    """Publishes ``count`` updates for the zip codes in ``zipcodes`` in turn, then ``END``.

    Its first update is not lost: topo calls this only once every linked SUB, a C
    program's too, has subscribed (the PUB's gate sees the subscription whatever the
    subscriber's language)."""
    pub = node.sockets["updates"]
    zipcodes: list[str] = [str(z) for z in node.args.get("zipcodes", ["10001"])]
    count: int = node.args.get("count", 10)
    for i in range(count):
        update = f"{zipcodes[i % len(zipcodes)]} {50 + i % 40} {20 + i % 30}"
        if i == 0:
            print(f"{node.name}: first update: {update}", flush=True)
        pub.send_string(update)
    pub.send_string("END")
