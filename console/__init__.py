"""warroom's console: the command line, the screen and everything between the probes and the panes.

Rooms, each importing only the ones after it (tests/unit/test_layout.py checks it):
commands -> ui -> remote -> diagnosis -> engine -> settings -> probes/.
cli.py is the entry point; widgets/ read the engine's store and the diagnosis results.
"""

__version__ = "0.1.0"
