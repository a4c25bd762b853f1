"""The evidence behind the estimator's constants, outside the runtime package.

- :mod:`.published`: the data set of published hls4ml designs with their vendor reports
  (``tests/data/published/``);
- :mod:`.designs`: rebuilding a published design as a Keras model and an hls4ml ModelGraph;
- :mod:`.yosys_records`: the yosys counts of the reference students' RTL (``tests/data/yosys/``),
  compared with the estimate, never fitted on;
- :mod:`.fit`: ``python -m tools.estimator.fit``, the fit of the builtin calibration, the
  leave-one-source-out errors, then the yosys comparison.

They import :mod:`trigger.firmware.estimate`; the package never imports them.
"""
