"""trigger.stages: the stage runners, one per command, above the libraries.

Each runner reads its inputs, calls the libraries (:mod:`trigger.data`, :mod:`trigger.models`,
:mod:`trigger.compress`, :mod:`trigger.firmware`, :mod:`trigger.report`) and writes its outputs with
their typed contracts (:mod:`trigger.contracts`). The libraries import nothing from here; the CLI
(:mod:`trigger.cli`) only parses arguments, applies them to a config
(:func:`trigger.config.apply_overrides`) and calls a runner.

- :func:`train` (``trigger train``), :func:`compress_file` (``trigger compress``),
  :func:`synthesize` (``trigger synth``): :mod:`.train`, :mod:`.compress`, :mod:`.synth`;
- :mod:`.reference` (``make reference``) and :mod:`.demo` (``make demo``).
"""

from trigger.stages.compress import CompressResult, compress_file
from trigger.stages.synth import SynthResult, synthesize
from trigger.stages.train import TrainResult, train

__all__ = ["CompressResult", "SynthResult", "TrainResult", "compress_file", "synthesize", "train"]
