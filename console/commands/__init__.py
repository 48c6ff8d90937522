"""Commands: one module per sub-command, each with ``main(argv) -> int``.

``console`` is plain `warroom` (the screen, or --json), then ``demo``,
``check``, ``capture`` and ``replay``. A command parses its arguments, gets a
Settings from console.settings and runs; it holds no logic other rooms need.

May import: every other room (ui, remote, diagnosis, engine, settings), probes/.
Nothing imports commands except console/cli.py.
"""
