"""Load and size benchmarks (bench/README.md); not part of the test run."""
