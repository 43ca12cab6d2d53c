"""Observing what flows: recordings of the messages a run's sockets sent and received, and
their replay.

A recording is an MCAP file (the format of ROS 2 bags and Foxglove: chunked, compressed,
indexed, readable without its summary after a crash), one channel per instance, socket
and direction, each message a ZeroMQ multipart message (:mod:`topo.observe.frames`), with
the topology file and the plan stored beside them. The ``mcap`` library is imported only
by the modules that read or write one, so a command that does neither (``topo --help``)
does not pay for it. May import: :mod:`topo.errors`, :mod:`topo.file`, :mod:`topo.plan`,
:mod:`topo.process` (a replaying node is a node) and its own modules; the supervisor side
and the command line import it. Public names: :class:`topo.observe.recording.Recorder`,
:func:`topo.observe.recorded.messages`, :func:`topo.observe.recorded.summarize`, the
node ``topo.nodes:replay`` (:func:`topo.observe.replay.replay`).

Modules:

- ``frames``: One multipart message as one MCAP message: the byte layout, both ways.
- ``recording``: Writing a recording: channels, messages, the topology beside them, in
  bounded memory.
- ``recorded``: Reading a recording, a truncated one included: its messages, its
  channels with their counts and times.
- ``taprecorder``: The recorder process of ``topo up --record``: the recorded sockets'
  copies read from their taps and written to the MCAP file, finished at the run's end.
- ``replay``: The node ``topo.nodes:replay``: a recorded channel sent again on a socket,
  at the recorded pace, faster, or as fast as it goes.
"""
