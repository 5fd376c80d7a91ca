"""The Argo Rollouts and Flagger recipes in docs/ci/ are generated from the gate's PromQL
(deploys/verify_promql.py): the committed files must be what the generator writes now.
(tests/stack/test_verify_prometheus.py validates them against the CRD schemas and runs them.)"""

from __future__ import annotations

from pathlib import Path

from marketplace_exporter.deploys import verify_recipes
from marketplace_exporter.deploys.verify_promql import AtWindow, Selection, rules

CI = Path(__file__).resolve().parents[2] / "docs" / "ci"


def test_the_committed_recipes_are_fresh() -> None:
    for name, text in verify_recipes.render().items():
        assert (CI / name).read_text(encoding="utf-8") == text, (
            f"docs/ci/{name} is stale: run python -m marketplace_exporter.deploys.verify_recipes docs/ci")


def test_verify_and_the_recipes_share_every_rule() -> None:
    """Same rule names, same shape: only the windows and the selectors differ."""
    exact = rules(Selection("order-sync", 'site=~"US"'), AtWindow(1800, 1_800_000_000), AtWindow(300, 1_800_000_400))
    argo = verify_recipes.render()[verify_recipes.ARGO_FILE]
    assert {rule.name for rule in exact} == {name for _, names, _ in verify_recipes.GROUPS for name in names}
    for rule in exact:  # every rule compares the two sides (the coverage ones look at the baseline)
        assert "[1800s] @ 1800000000.000" in rule.expr, rule.name
        assert ("[300s] @ 1800000400.000" in rule.expr) == (rule.kind != "judged"), rule.name
    assert "{{args.window}}" in argo and "@ end()" in argo
