"""PostgreSQL for the tests: the machine's server when it answers, otherwise a private cluster; the local
stack's code (stack/postgres.py), named here too for the tests.

Use from a session fixture::

    @pytest.fixture(scope="session")
    def postgres():
        server = support_pg.postgres_server()
        yield server
        server.stop()  # stops the cluster only if this run started it

and give each test a throwaway database with ``with server.database() as url: ...`` (dropped afterwards).
``TABULA_TEST_POSTGRES=private`` forces a private cluster even when the machine's server answers.
"""

from stack.postgres import MACHINE_HOST, MACHINE_PORT, SUPERUSER, PostgresServer, machine_postgres, postgres_server, start_postgres

__all__ = ["MACHINE_HOST", "MACHINE_PORT", "SUPERUSER", "PostgresServer", "machine_postgres", "postgres_server", "start_postgres"]
