"""PostgreSQL with its password read from the secrets provider at every new connection.

A password rotated in the secrets store is used by the next connection, without a restart; a connection refused
for its password reads the secret again (at most every PASSWORD_REFRESH_SECONDS) and tries once more, for the
moment between the database taking the new password and this process's cached copy expiring.
"""

import psycopg
from django.db.backends.postgresql import base

from ragsecure.secrets import get_secret, secrets_provider

PASSWORD_SECRET = "database-password"
PASSWORD_REFRESH_SECONDS = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        params["password"] = get_secret(PASSWORD_SECRET)
        return params

    def get_new_connection(self, conn_params):
        try:
            return super().get_new_connection(conn_params)
        except psycopg.OperationalError as exc:
            if "password" not in str(exc).lower() or not secrets_provider().refresh(PASSWORD_SECRET, min_interval=PASSWORD_REFRESH_SECONDS):
                raise
            return super().get_new_connection({**conn_params, "password": get_secret(PASSWORD_SECRET)})
