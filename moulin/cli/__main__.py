"""``python -m moulin.cli``: the ``moulin`` command."""

from moulin.cli import main

main()
