"""The scale benchmark: a deterministic SYNTHETIC universe, the pipeline on it, the floor and a
naive baseline (``python -m benchmarks.run``, ``make bench``). See ``benchmarks/README.md``.

Every file, table value and report this package writes is labelled SYNTHETIC: the universe is
generated from a seed, it is not market data.
"""

SYNTHETIC = "SYNTHETIC"
