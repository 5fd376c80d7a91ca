"""Per-seller accounts files (``accounts_files:``): one YAML or JSON file per seller, written by an ERP.

A file holds one account (a mapping, the same keys as an ``accounts:`` entry) or a list of them.
:meth:`AccountsFiles.scan` finds the files (globs, or directories' ``*.yml``/``*.yaml``/``*.json``;
dot-files and other suffixes such as an ERP's ``*.tmp`` are never read), re-reads only files whose
modification time or size changed, and retries broken ones. A broken file keeps its last good
version (none if it never had one) and its problems are listed, each naming the file, the line and
the key. Other files still apply.

Scans may run in a worker thread (the exporter's watcher does): they are serialised by a lock and
publish their results as immutable snapshots, so readers on the event loop never wait for a scan.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.config.accounts import SECRET_KEYS, AccountContext, resolve_account
from marketplace_exporter.config.schema import account_type
from marketplace_exporter.config.specs import AccountsFilesSettings, CheckSpec
from marketplace_exporter.config.yaml_loading import (
    ConfigError,
    KeyPath,
    LineMap,
    dotted,
    pydantic_errors,
    read_text,
    read_yaml,
)

log = logging.getLogger(__name__)

SUFFIXES = (".yml", ".yaml", ".json")
AccountKey = tuple[str, str]  # (marketplace, alias)


@dataclass(frozen=True)
class _File:
    stamp: tuple[int, int]  # (mtime_ns, size)
    context: str
    #: the last good version's checks and accounts (None: never good)
    good: tuple[CheckSpec, ...] | None
    accounts: tuple[tuple[AccountKey, KeyPath], ...]
    #: what is wrong with the file as it is now (empty: nothing)
    problems: tuple[str, ...] = ()


class AccountsFiles:
    """The accounts files of one config, kept between scans."""

    def __init__(self, *, quiet: bool = False) -> None:
        #: quiet: do not log broken files (``check-config`` prints them itself)
        self._quiet = quiet
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self._own: frozenset[AccountKey] | None = None
        self._order: list[str] = []  # the paths of _files, sorted (the order files apply in)
        #: published by each scan (replaced, never mutated: safe to read from another thread)
        self.file_checks: tuple[CheckSpec, ...] = ()
        self.problems: Mapping[str, tuple[str, ...]] = {}
        self.files_ok = 0
        #: versions of files that could not be used, since the process started
        self.errors_total = 0

    def broken(self) -> Mapping[str, tuple[str, ...]]:
        """File (or ``accounts_files`` entry) → what is wrong with it now."""
        return self.problems

    def scan(self, settings: AccountsFilesSettings, context: AccountContext,
             own_accounts: Iterable[AccountKey] = ()) -> bool:
        """Look at every file; re-read the changed and the broken ones. True when the checks the
        files contribute changed (``file_checks`` then holds the new set)."""
        with self._lock:
            paths, entry_problems = discover(settings)
            context_key = f"{context.interval_configured}:{context.raw_defaults}"
            files: dict[str, _File] = {}
            reread = False
            for path in paths:
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # removed between listing and now
                stamp = (stat.st_mtime_ns, stat.st_size)
                old = self._files.get(path)
                if old is not None and old.stamp == stamp and old.context == context_key and not old.problems:
                    files[path] = old
                else:
                    new = files[path] = self._read(path, stamp, context, context_key, old)
                    # a broken file retried with the same result changes nothing
                    reread |= old is None or new.good is not old.good or new.problems != old.problems
            if entry_problems:  # a directory vanished or is unreadable: keep what it had
                for path, old in self._files.items():
                    files.setdefault(path, old)
            own = frozenset(own_accounts)
            same_files = files.keys() == self._files.keys()
            if not reread and same_files and own == self._own and not entry_problems:
                return False  # the common case of a poll: nothing to compose (50,000 files: ~1 s saved)
            if not same_files:  # sorting 50,000 paths holds the GIL for tens of ms: only when needed
                self._order = sorted(files)
            self._files, self._own = files, own
            checks, conflicts = _compose(self._order, files, own)
            changed = [(c.id, c.fingerprint) for c in checks] != [(c.id, c.fingerprint) for c in self.file_checks]
            problems: dict[str, tuple[str, ...]] = {entry: (text,) for entry, text in entry_problems.items()}
            for path, state in files.items():
                listed = state.problems + conflicts.get(path, ())
                if listed:
                    problems[path] = listed
            self.file_checks = checks
            self.files_ok = sum(1 for path in files if path not in problems)
            self.problems = problems
            return changed

    def _read(self, path: str, stamp: tuple[int, int], context: AccountContext, context_key: str,
              old: _File | None) -> _File:
        problems: list[str] = []
        parsed = read_accounts_file(path, context, problems)
        if not problems:
            checks, accounts = parsed
            return _File(stamp, context_key, checks, accounts)
        if old is None or old.stamp != stamp or old.problems != tuple(problems):
            self.errors_total += 1
            if not self._quiet:
                kept = "keeping its last good version" if old is not None and old.good is not None else "not used"
                log.error("accounts file %s is broken (%s):\n%s", path, kept, "\n".join(problems))
        return _File(stamp, context_key, old.good if old else None, old.accounts if old else (), tuple(problems))


def discover(settings: AccountsFilesSettings) -> tuple[set[str], dict[str, str]]:
    """The files the entries name, and entries that cannot be read (entry → why). Not sorted: a
    poll of 50,000 paths would hold the GIL for the sort while nothing changed."""
    found: set[str] = set()
    problems: dict[str, str] = {}
    for entry in settings.patterns:
        full = os.path.join(settings.base_dir, os.path.expanduser(entry))
        if glob.has_magic(entry):
            found.update(path for path in glob.glob(full) if _wanted(os.path.basename(path)) and os.path.isfile(path))
        elif os.path.isdir(full):
            try:
                with os.scandir(full) as listing:
                    found.update(item.path for item in listing if _wanted(item.name) and item.is_file())
            except OSError as exc:
                problems[entry] = f"cannot list the accounts directory {full}: {exc.strerror}"
        elif os.path.isfile(full):
            found.add(full)
        else:
            problems[entry] = f"expected a directory, a file or a glob; {full} does not exist"
    return found, problems


def _wanted(name: str) -> bool:
    return not name.startswith((".", "~")) and name.endswith(SUFFIXES)


_ACCOUNT: TypeAdapter[Any] | None = None


def _account_adapter() -> TypeAdapter[Any]:
    global _ACCOUNT
    if _ACCOUNT is None:
        _ACCOUNT = TypeAdapter(account_type())
    return _ACCOUNT


def read_accounts_file(path: str, context: AccountContext,
                       problems: list[str]) -> tuple[tuple[CheckSpec, ...], tuple[tuple[AccountKey, KeyPath], ...]]:
    """One file → its checks and accounts; problems (located) are appended to ``problems``.

    JSON files are parsed as JSON (fast), others with libyaml; line numbers are looked up only when
    there is an error to locate."""
    try:
        # the one bounded loader: size cap, alias bombs, impossible dates (yaml_limits)
        text = read_text(path, "accounts file")
        data = _json(path, text) if path.endswith(".json") else read_yaml(path, text)[1]
    except ConfigError as exc:
        problems.extend(exc.errors)
        return (), ()
    if isinstance(data, dict):
        entries: list[tuple[KeyPath, Any]] = [((), data)]
    elif isinstance(data, list) and data:
        entries = [((index,), item) for index, item in enumerate(data)]
    else:
        problems.append(f"{path}:1: (root): expected an account (a mapping with marketplace, alias, site, "
                        f"credentials, checks) or a list of accounts, got {type(data).__name__}")
        return (), ()
    lines: list[LineMap] = []

    def located() -> LineMap:
        if not lines:
            lines.append(line_map(path, text))
        return lines[0]

    def error(key: KeyPath, message: str) -> None:
        problems.append(located().error(key, message))

    checks: list[CheckSpec] = []
    accounts: list[tuple[AccountKey, KeyPath]] = []
    seen: dict[AccountKey, KeyPath] = {}
    text_digest = hashlib.sha256(text.encode()).hexdigest()
    for prefix, entry in entries:
        try:
            account = _account_adapter().validate_python(entry)
        except ValidationError as exc:
            problems.extend(pydantic_errors(exc, located(), secret_keys=SECRET_KEYS, prefix=prefix,
                                            strip_tag=ADAPTERS))
            continue
        key = (account.marketplace, account.alias)
        if key in seen:
            error(prefix + ("alias",), f"duplicate alias {account.alias!r} for {account.marketplace} "
                                       f"(first at {dotted(seen[key])})")
            continue
        seen[key] = prefix
        accounts.append((key, prefix))
        # the file's text stands for the entry: an edit restarts that file's checks only
        checks += resolve_account(account, f"{text_digest}{prefix}", prefix, context, error)
    return tuple(checks), tuple(accounts)


def _json(path: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path}:{exc.lineno}: invalid JSON: {exc.msg}"]) from None
    except ValueError as exc:  # an integer over Python's 4,300-digit limit
        raise ConfigError([f"{path}: invalid JSON: {str(exc).split(':')[0]}"]) from None


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def line_map(path: str, text: str) -> LineMap:
    """Key path → line for ``text`` (JSON is YAML too); an unparsable text maps everything to 1."""
    try:
        loader = _LOADER(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError:
        root = None
    return LineMap.of(path, root)


def _compose(order: list[str], files: Mapping[str, _File],
             own: Iterable[AccountKey]) -> tuple[tuple[CheckSpec, ...], dict[str, tuple[str, ...]]]:
    """Every file's good checks in path order; an account another file (or the config file itself)
    already defines is left out, and said so for the later file."""
    seen: dict[AccountKey, str] = dict.fromkeys(own, "the config file's accounts")
    checks: list[CheckSpec] = []
    conflicts: dict[str, tuple[str, ...]] = {}
    for path in order:
        state = files[path]
        if state.good is None:
            continue
        duplicate = {key: where for key, where in state.accounts if key in seen}
        if duplicate:
            lines = _lines_of(path)
            conflicts[path] = tuple(
                lines.error(where + ("alias",), f"duplicate alias {alias!r} for {marketplace} (already in "
                                                f"{seen[(marketplace, alias)]}): this account is not used")
                for (marketplace, alias), where in duplicate.items())
        for key, _ in state.accounts:
            seen.setdefault(key, path)
        checks += (check for check in state.good if (check.marketplace, check.account) not in duplicate)
    return tuple(checks), conflicts


def _lines_of(path: str) -> LineMap:
    try:
        return line_map(path, read_text(path, "accounts file"))
    except ConfigError:
        return LineMap(path)


__all__ = ["SUFFIXES", "AccountsFiles", "discover", "line_map", "read_accounts_file"]
