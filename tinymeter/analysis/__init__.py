"""Layer 5, analysis: what tinymeter computes from runs without running anything itself.

Reports and report pages (``report``, ``reportpage``, ``runtimecmp``), the calibration
fit and the store of calibrations (``calibrate``, ``calibrations``), the baseline check
(``check``) and the shared plotting style (``plots``). Imports core, firmware ABI,
models, firmware and targets (sim, hw), never an application or the CLI.
"""
