"""Performance benchmarks of cbcp_sim (run with ``python -m benchmarks``; not part of the test suite)."""
