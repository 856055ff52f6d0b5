"""On-demand benchmark harness for the `etl` sync (never part of the test suite).

Run it with `python -m bench --help`; see bench/README.md.
"""
