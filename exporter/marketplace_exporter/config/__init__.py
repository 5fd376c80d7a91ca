"""Configuration: the pydantic model (``schema``), the YAML loader with located errors (``load``),
per-seller accounts files (``accounts_files``) and where a running exporter reads it (``source``)."""

from marketplace_exporter.config.load import load_config
from marketplace_exporter.config.schema import json_schema
from marketplace_exporter.config.specs import CheckSpec, LoadedConfig
from marketplace_exporter.config.yaml_loading import ConfigError

__all__ = ["CheckSpec", "ConfigError", "LoadedConfig", "json_schema", "load_config"]
