"""Benchmarks of memmesh against raw baselines and peers, measured in one run.

``memmesh bench`` (``run.main``) publishes the head-to-head report; the ``bench_*``
modules measure one layer each and also run on their own as scripts.
"""
