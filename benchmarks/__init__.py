"""Benchmarks, each writing its own section of docs/benchmarks.md (see ``benchmarks.report``)."""
