"""Turning result files into statistics, tables and figures."""
