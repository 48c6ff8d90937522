"""Probes: I/O and measurement only. Nothing in this package may import Textual.

The same code runs inside the console and, shipped over SSH, on remote hosts.
"""
