"""Datasets: the built-in ones (data/), JSON and CSV files, weight points and their claims."""
