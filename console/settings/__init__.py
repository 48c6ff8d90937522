"""Settings: built once from the command line and the TOML file, validated in one place.

Lives here: the argument parsers (``arguments``), the config file reader
(``config_file``), SSH hosts (``hosts``), pools and server views (``pools``),
the one ``Settings`` object every command receives (``settings``) and the
``UsageError`` that becomes the CLI's one-line message with exit status 2.

May import: probes/ and the standard library only. Nothing after
``build_settings`` reads argparse.
"""
