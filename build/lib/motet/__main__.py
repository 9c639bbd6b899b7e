"""`python -m motet ...`: the `motet` command."""

from .cli import main

main(prog_name="motet")
