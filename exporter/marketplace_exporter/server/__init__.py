"""The exporter's HTTP server (aiohttp): ``create_app`` builds it, the CLI runs it."""

from marketplace_exporter.server.app import ConfigSource, create_app, reload_config, schedule_reload

__all__ = ["ConfigSource", "create_app", "reload_config", "schedule_reload"]
