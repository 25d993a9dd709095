"""Synthetic data with known truth: the demo lots and simulated Illumina reads.

Nothing in the product imports this package: it writes test, benchmark and demo data, and the only
way in from the product is the ``rapidrelease simulate-demo`` subcommand, which imports it when run
(``tests/unit/synthetic/test_isolation.py`` holds both sides to that).
"""
