"""The local production stack: Tabula's production shape on one machine, on loopback, without root.

``stack.local.LocalStack`` is the stack itself (nginx over TLS, gunicorn and two daphne processes under
supervisord, a private Redis, a throwaway PostgreSQL database); ``stack.processes`` starts and stops
the processes it is made of, ``stack.postgres`` finds or starts PostgreSQL, and ``stack.clients`` logs
in and calls the API. ``scripts/stack``, the benchmarks in bench/ and the tests use it; it imports
nothing from tests/.
"""
