"""`python -m tracechain`: the same CLI as the `tracechain` command, for when its script is not on PATH."""

from tracechain.cli import main

main()
