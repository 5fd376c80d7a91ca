"""The adapter registry: a plain dict, the list of supported marketplaces (blackbox ``Probers``).

Adding a marketplace is one module subclassing :class:`~marketplace_exporter.adapters.base.Marketplace`
plus one line here (and its platform in the simulator): ``docs/adding-a-marketplace.md``.
"""

from __future__ import annotations

from marketplace_exporter.adapters.aliexpress import AliExpress
from marketplace_exporter.adapters.amazon_sp import AmazonSP
from marketplace_exporter.adapters.base import Adapter
from marketplace_exporter.adapters.ebay import Ebay
from marketplace_exporter.adapters.http import HttpCheck
from marketplace_exporter.adapters.lazada import Lazada
from marketplace_exporter.adapters.mercadolibre import MercadoLibre
from marketplace_exporter.adapters.ozon import Ozon
from marketplace_exporter.adapters.shopee import Shopee
from marketplace_exporter.adapters.temu import Temu
from marketplace_exporter.adapters.tiktok_shop import TikTokShop
from marketplace_exporter.adapters.walmart import Walmart
from marketplace_exporter.adapters.wish import Wish

ADAPTERS: dict[str, Adapter] = {
    AmazonSP.name: AmazonSP(),
    Lazada.name: Lazada(),
    AliExpress.name: AliExpress(),
    Shopee.name: Shopee(),
    TikTokShop.name: TikTokShop(),
    MercadoLibre.name: MercadoLibre(),
    HttpCheck.name: HttpCheck(),
    Ebay.name: Ebay(),
    Walmart.name: Walmart(),
    Wish.name: Wish(),
    Temu.name: Temu(),
    Ozon.name: Ozon(),
}

__all__ = ["ADAPTERS", "Adapter"]
