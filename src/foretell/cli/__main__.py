"""`python -m foretell.cli`: the `foretell` command."""

from foretell.cli.entry import main

main()
