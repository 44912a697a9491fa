"""The benchmark harness: candidates, timing, memory measurement in fresh processes."""
