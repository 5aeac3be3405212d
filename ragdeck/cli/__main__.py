"""``python -m ragdeck.cli``: the same as the ``ragdeck`` command."""

from ragdeck.cli import main

main()
