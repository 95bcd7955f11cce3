"""``python -m runtrace.cli``: the same as the ``runtrace`` command."""

from . import main

raise SystemExit(main())
