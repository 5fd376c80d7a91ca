"""The monitoring mixin: Prometheus alert rules and Alertmanager routing generated from one config.

``marketplace-exporter rules generate --config mixin.yml --out DIR`` (:mod:`.cli`) writes them for
any Prometheus: the job selector, thresholds, owners, runbook URL, language and extra labels are
the config's (:mod:`.config`, read by :mod:`.loader`). The repository's ``alert-rules/`` holds the
output of the defaults, with promtool tests.
"""
