"""SSH hosts: the connection and its agent, the shipped payload, remote capture, the check run from a host.

May import: diagnosis (the check verdict), engine, settings, probes/. Never ui or commands.
asyncssh is imported here only, so a local console does not pay for it.
"""
