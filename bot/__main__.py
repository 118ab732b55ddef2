"""`python -m bot` is the `pmteam` command."""

from bot.cli import main

raise SystemExit(main())
