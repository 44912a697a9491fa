"""Compound scaling as a tool: fit a budget, grid-search alpha/beta/gamma, single-vs-compound studies."""
