"""The quantized-network IR: one typed, immutable description of a quantized network that every
back end reads (the exact evaluator, the hls4ml configuration, the C-simulation comparison, the RTL
tracer, BOPs and the estimator). Modules: ``formats`` (fixed-point formats), ``quantizers`` (QKeras
quantizers and HGQ's per-element casts as data, exact semantics), ``network`` (nodes and operations), ``keras`` (the builder
from a Keras model), ``evaluate`` (the exact float64 evaluator), ``ranges`` (the fixed-point format
of every tensor). See docs/architecture.md."""
