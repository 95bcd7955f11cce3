"""``python -m runtrace``: the same as the ``runtrace`` command."""

from .cli import main

raise SystemExit(main())
