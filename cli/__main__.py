"""`python -m slmkit.cli` = the `slmkit` command."""

from slmkit.cli.main import main

main()
