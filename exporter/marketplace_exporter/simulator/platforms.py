"""The simulated marketplaces: a plain list, like the adapter registry.

Adding a marketplace to the simulator is one module with a class implementing
:class:`~marketplace_exporter.simulator.faults.Platform` plus one line here. A factory gets the
shared identities (Amazon, Shopee) and the app's clock; newer platforms keep their simulator-only
identities in their own module.
"""

from __future__ import annotations

from collections.abc import Callable

from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.aliexpress import AliExpressSim
from marketplace_exporter.simulator.amazon import AmazonSim
from marketplace_exporter.simulator.ebay import EbaySim
from marketplace_exporter.simulator.faults import Platform
from marketplace_exporter.simulator.http_target import HttpTargetSim
from marketplace_exporter.simulator.lazada import LazadaSim
from marketplace_exporter.simulator.mercadolibre import MercadoLibreSim
from marketplace_exporter.simulator.ozon import OzonSim
from marketplace_exporter.simulator.shopee import ShopeeSim
from marketplace_exporter.simulator.temu import TemuSim
from marketplace_exporter.simulator.tiktok_shop import TikTokShopSim
from marketplace_exporter.simulator.walmart import WalmartSim
from marketplace_exporter.simulator.wish import WishSim

PlatformFactory = Callable[[SimAccounts, Callable[[], float]], Platform]

PLATFORMS: tuple[PlatformFactory, ...] = (
    AmazonSim,
    ShopeeSim,
    LazadaSim,
    AliExpressSim,
    EbaySim,
    TikTokShopSim,
    MercadoLibreSim,
    WalmartSim,
    WishSim,
    TemuSim,
    OzonSim,
    lambda accounts, clock: HttpTargetSim(clock),
)
