"""`python -m motet.cli ...`: the `motet` command (what `motet dev` runs its app with)."""

from ._main import main

main(prog_name="motet")
