"""Where the exporter's config comes from, and the accounts files it keeps between loads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from marketplace_exporter.config.accounts_files import AccountsFiles
from marketplace_exporter.config.load import load_config
from marketplace_exporter.config.specs import LoadedConfig
from marketplace_exporter.config.yaml_loading import read_text


@dataclass(frozen=True)
class ConfigSource:
    """A config file. ``transform`` rewrites the text before parsing (the demo points its built-in
    config at wherever the simulator listens). ``accounts`` keeps the accounts files between
    loads, so a broken file keeps its last good version across reloads."""

    path: str
    transform: Callable[[str], str] | None = field(default=None, compare=False)
    accounts: AccountsFiles = field(default_factory=AccountsFiles, compare=False, repr=False)

    def load(self) -> LoadedConfig:
        text = None if self.transform is None else self.transform(read_text(self.path))
        return load_config(self.path, text=text, accounts=self.accounts)


__all__ = ["ConfigSource"]
