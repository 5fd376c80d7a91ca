"""The identities the simulator knows. Simulator-only fake values: they open nothing real.

The demo config and the tests use exactly these. Everything here is frozen: the simulator's
mutable state (issued tokens, buckets, faults, counts) lives on the aiohttp app, never here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AmazonMarketplace:
    """One Amazon marketplace as the Sellers API describes it (``Marketplace`` in sellers.json)."""

    id: str
    country_code: str
    name: str
    default_currency_code: str
    default_language_code: str
    domain_name: str


US = AmazonMarketplace("ATVPDKIKX0DER", "US", "Amazon.com", "USD", "en_US", "www.amazon.com")
CA = AmazonMarketplace("A2EUQ1WTGCTBG2", "CA", "Amazon.ca", "CAD", "en_CA", "www.amazon.ca")
UK = AmazonMarketplace("A1F83G8C2ARO7P", "GB", "Amazon.co.uk", "GBP", "en_GB", "www.amazon.co.uk")
DE = AmazonMarketplace("A1PA6795UKMFR9", "DE", "Amazon.de", "EUR", "de_DE", "www.amazon.de")
FR = AmazonMarketplace("A13V1IB3VIYZZH", "FR", "Amazon.fr", "EUR", "fr_FR", "www.amazon.fr")


@dataclass(frozen=True)
class AmazonAccount:
    """A selling partner that authorised the simulated SP-API application."""

    alias: str
    client_id: str
    client_secret: str
    refresh_token: str
    store_name: str
    marketplaces: tuple[AmazonMarketplace, ...]


@dataclass(frozen=True)
class ShopeeShop:
    """A shop authorised to the simulated Shopee partner."""

    alias: str
    shop_id: int
    access_token: str
    region: str
    shop_name: str
    #: how long before the simulator started the shop authorised the partner (authorisation
    #: lasts 365 days, so this also sets how far away ``expire_time`` is)
    authorized_days_ago: int


@dataclass(frozen=True)
class ShopeePartner:
    """The simulated Shopee partner (app) and its authorised shops."""

    partner_id: int
    partner_key: str
    shops: tuple[ShopeeShop, ...]


@dataclass(frozen=True)
class SimAccounts:
    """Every identity the simulator accepts."""

    amazon_sp: tuple[AmazonAccount, ...]
    shopee: ShopeePartner

    def amazon(self, alias: str) -> AmazonAccount:
        """The Amazon account with this alias (KeyError if unknown)."""
        for account in self.amazon_sp:
            if account.alias == alias:
                return account
        raise KeyError(alias)

    def shop(self, alias: str) -> ShopeeShop:
        """The Shopee shop with this alias (KeyError if unknown)."""
        for shop in self.shopee.shops:
            if shop.alias == alias:
                return shop
        raise KeyError(alias)


_LWA_CLIENT_ID = "amzn1.application-oa2-client.sim0001"
_LWA_CLIENT_SECRET = "sim-lwa-secret-0001"

SIM_ACCOUNTS = SimAccounts(
    amazon_sp=(
        AmazonAccount(
            alias="us-main", client_id=_LWA_CLIENT_ID, client_secret=_LWA_CLIENT_SECRET,
            refresh_token="Atzr|sim-refresh-us-main", store_name="Sim Outfitters US",
            marketplaces=(US, CA),
        ),
        AmazonAccount(
            alias="eu-main", client_id=_LWA_CLIENT_ID, client_secret=_LWA_CLIENT_SECRET,
            refresh_token="Atzr|sim-refresh-eu-main", store_name="Sim Outfitters EU",
            marketplaces=(UK, DE, FR),
        ),
    ),
    shopee=ShopeePartner(
        partner_id=2001887,
        partner_key="sim-shopee-partner-key-0001",
        shops=(
            ShopeeShop(
                alias="sg-main", shop_id=14701711, access_token="sim-shopee-access-sg-main",
                region="SG", shop_name="sim_shop_sg", authorized_days_ago=30,
            ),
            ShopeeShop(
                alias="my-main", shop_id=14701712, access_token="sim-shopee-access-my-main",
                region="MY", shop_name="sim_shop_my", authorized_days_ago=300,
            ),
        ),
    ),
)
