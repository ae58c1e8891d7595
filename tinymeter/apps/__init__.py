"""Layer 6, applications: the workflows a user runs.

``estimate`` (model -> firmware -> emulator -> report), ``tflm`` (the same with a user's
TFLM library), ``validate`` (outputs against the references), ``measure`` (flash, read
reports, store; calibration campaigns) with its ``resultsdb``, ``microbench`` (the
calibration firmware's instruction-mix layers) and ``sweep`` (NAS over a search space).
Only the CLI imports them.
"""
