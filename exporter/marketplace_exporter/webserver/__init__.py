"""How the exporter and the bridge listen, the Prometheus way: ``--web.config.file`` (TLS, basic
auth, headers, rate limit in the exporter-toolkit format: config.py, tls.py, gate.py),
``--web.enable-lifecycle`` (lifecycle.py), ``--web.external-url`` and ``--web.route-prefix``
(options.py, prefix.py); listener.py puts them together for one server.

Nothing is imported here: the flags (options.py) are read by every command line, which must not
pay for aiohttp.
"""
