"""Integration tests: real interpreters, real hung programs, threaddoc run as a subprocess."""
