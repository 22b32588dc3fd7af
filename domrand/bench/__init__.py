"""Benchmarks that ship with the library: ``domrand bench transfer`` (the sim-to-real table).

:mod:`domrand.bench.methods` trains one policy with one DR method, :mod:`domrand.bench.transfer`
plans, caches and runs the cells, :mod:`domrand.bench.report` turns the rows into a CSV, a
Markdown table, JSON and plots.
"""
