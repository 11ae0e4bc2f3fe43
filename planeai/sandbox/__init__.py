"""The Docker sandbox: a session's agent runs in a container of its own, its terminal on the host.

The session itself (the PTY, the tmux pane, the daemon's terminal) stays where every backend
keeps it; what runs in it is :mod:`planeai.sandbox.supervise`, a small host process that runs
``docker run -it`` for the agent on that same terminal and serves the session's inbox (how a
``planeai task add`` typed inside reaches the host's board without the container ever opening
the database). Status, attach, send and scrollback therefore work as for a host session.

Modules: :mod:`~planeai.sandbox.engine` (the docker CLI: engine, images, containers by label),
:mod:`~planeai.sandbox.container` (the ``docker run`` argv: mounts, limits, labels),
:mod:`~planeai.sandbox.images` (the bundled Dockerfiles and ``planeai sandbox build``),
:mod:`~planeai.sandbox.state` (each provider's own state dir, its HOME inside),
:mod:`~planeai.sandbox.inbox` (the host side of the in-container ``planeai``).
"""
