"""tinymeter.hw: flash real (or virtual) boards, measure per-layer cycles and energy,
calibrate the cost model against the measurements.

Pure logic (argv building, the report protocol, calibration maths, energy integration)
lives in modules without I/O; the I/O modules (``probe``, ``serialport``, ``power``,
``resultsdb``, ``virtual``) are thin and import optional packages lazily.
"""
