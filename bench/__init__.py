"""Benchmarks: ``meshmpc bench NAME --json`` prints one JSON object per result line."""
