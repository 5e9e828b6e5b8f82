"""`python -m slmkit.converter` = the `slmkit` command."""

from slmkit.converter.cli import main

main()
