"""`python -m store run|migrate|status|prune|load ...` and `python -m store explain ITEM` (store.cli)."""

from store.cli import main

raise SystemExit(main())
