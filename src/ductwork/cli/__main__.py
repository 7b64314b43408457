"""``python -m ductwork.cli``: the same as the ``ductwork`` command."""

from ductwork.cli.entry import main

main()
