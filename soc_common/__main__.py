"""``python -m soc_common`` is the ``soc`` command (used where the entry-point script is not on PATH)."""

from soc_common.entry import main

main()
