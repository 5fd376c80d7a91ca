"""Deploy markers and their audit trail: the ``/api/v1/deploys`` API, the append-only SQLite log
behind it, freeze windows (11.11, Black Friday...), Grafana annotations, the metrics a dashboard
draws deploys from, and the ``deploy mark`` / ``deploys list|export`` commands a pipeline runs.

Kept import-light: the config schema imports :mod:`.config` from here.
"""
