"""Benchmarks, ``isda-bench perf <benchmark> ...`` (:mod:`bench.perf.commands`).

One module per benchmark: ``isda`` (one ISDA step, time and memory) and ``isda_ops`` (its op count)
over the workload of ``isda_steps``; ``step`` (a whole training step) and ``pipeline`` (``loader``,
``epoch``) over the model and step of ``training_step``; ``accuracy`` (plain against fast path,
over seeds). They share a harness: ``options`` and ``plans`` (every option checked first),
``device``, ``timing``, ``memory`` and ``output`` (the CSV and Markdown files each writes).
"""
