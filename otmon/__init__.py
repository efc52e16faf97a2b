"""Thin command-line package: wires collector, analysis and api; computes nothing."""
