"""Configuration: the pydantic model (``schema``) and the YAML loader with located errors (``load``)."""

from marketplace_exporter.config.load import CheckSpec, ConfigError, LoadedConfig, load_config
from marketplace_exporter.config.schema import json_schema

__all__ = ["CheckSpec", "ConfigError", "LoadedConfig", "json_schema", "load_config"]
