"""The adapter registry: a plain dict, the list of supported marketplaces (blackbox ``Probers``).

Adding a marketplace is one module implementing :class:`~marketplace_exporter.adapters.base.Adapter`
plus one line here (and its routes in the simulator).
"""

from __future__ import annotations

from marketplace_exporter.adapters.amazon_sp import AmazonSP
from marketplace_exporter.adapters.base import Adapter
from marketplace_exporter.adapters.http import HttpCheck
from marketplace_exporter.adapters.shopee import Shopee

ADAPTERS: dict[str, Adapter] = {
    AmazonSP.name: AmazonSP(),
    Shopee.name: Shopee(),
    HttpCheck.name: HttpCheck(),
}

__all__ = ["ADAPTERS", "Adapter"]
