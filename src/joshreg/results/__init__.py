"""Simulation results: Josh CSV exports into ``cell_data``, and what can be read from them.

Parsing exports, the loader, discovery, diagnostics queries and plots. May import the log,
the projection and the registry facade (a loader and the diagnostics take a registry).
"""
