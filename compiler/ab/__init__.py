"""A/B testing: variants and sweeps expanded into jobs, cache-aware order,
the sweep dispatcher, contact sheet and report.
"""
