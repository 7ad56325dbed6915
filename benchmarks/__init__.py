"""Throughput benchmarks of the spec's equations on each backend (pytest-benchmark).

Run: ``SPEC_BACKEND=numpy,torch pytest benchmarks --benchmark-only`` (add ``torch:cuda`` or
``cupy`` on a GPU machine). Not part of the default test run: timings are measured, never
asserted.
"""
