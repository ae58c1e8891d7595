"""Layer 7, the top: the `tinymeter` command.

``main`` (parser, model-side subcommands, entry point ``tinymeter.cli.main:main``),
``hw`` (flash, measure, calibrate, microbench), ``args`` (argument types and option groups
both share). Nothing in tinymeter imports this package.
"""
