"""The `slmkit` command line: one module per command group (docs/architecture.md).

Commands import what they run inside their bodies, so `slmkit route` loads neither torch nor the
converter; the converter's commands first check that the `convert` extra is installed
(`slmkit.cli.extras`).
"""
