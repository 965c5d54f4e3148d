"""openphone_pipelines: every OpenPhone message once, with its true final status, in your own Postgres.

Plain-Python domains (reconciliation, integrity, health_probe, recovery, alerting, reporting) over
openphone/ (the API) and store/ (all SQL); assets/, jobs/, sensors/ and resources/ are the Dagster
shells, assembled in definitions.py; settings.py reads every variable.
"""
