"""``python -m tinymeter.cli``: the `tinymeter` command."""

from tinymeter.cli.main import main

raise SystemExit(main())
