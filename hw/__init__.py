"""tinymeter.hw (targets layer): the board side -- flash real or virtual boards, read their
per-layer cycle reports, record energy.

``probe`` (pyOCD/OpenOCD argv, pure, and their runs with timeouts), ``serialport``
(reads with timeouts and retries), ``protocol`` (TM1 report aggregation over
:mod:`tinymeter.abi`), ``device`` (``HardwareDevice``: the run seam on a board),
``virtual`` (the virtual board: the emulator behind a pty timed by hidden silicon),
``power`` (trace maths, CSV traces, power-monitor drivers). Measuring campaigns,
microbenchmarks and the calibration fit build on these one layer up
(:mod:`tinymeter.apps`, :mod:`tinymeter.analysis`).
"""
