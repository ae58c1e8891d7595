"""Energy on a board: power traces and their maths (``trace``: windows, integration,
per-layer split; pure numpy), trace files (``csvio``: any instrument's CSV export), and
the power-monitor drivers (``monitors``: Joulescope, Nordic PPK2; their packages
imported lazily)."""
