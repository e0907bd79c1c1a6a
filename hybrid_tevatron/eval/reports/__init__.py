"""Metrics and language bias from ranks, and the results files, tables and plots of an evaluation."""
