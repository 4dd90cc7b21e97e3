"""What a deployment is built with: the reference venue's parameters and the vault's
immutable rules. Plain values, no I/O: the deploy tooling, the keeper and the models
share them."""

from __future__ import annotations

from dataclasses import dataclass

from keeper.core.fixed import PRICE_DECIMALS, PRICE_UNIT, TokenUnits


@dataclass(frozen=True)
class VenueParams(TokenUnits):
    """What the reference venue is deployed with. Money in whole token units unless `_wei`."""

    asset_name: str = "USD Coin (test)"
    asset_symbol: str = "USDC"
    asset_decimals: int = 6
    base_name: str = "Wrapped Ether (test)"
    base_symbol: str = "WETH"
    base_decimals: int = 18
    # Faucet: the most one `mint` call creates, whole units.
    asset_mint_cap: int = 1_000_000
    base_mint_cap: int = 1_000
    price_description: str = "ETH / USD"
    price_e8: int = 3_000 * 10**PRICE_DECIMALS
    # The asset's own USD feed (the vault's de-peg guard), like Chainlink's USDC / USD.
    asset_price_description: str = "USDC / USD"
    asset_price_e8: int = 10**PRICE_DECIMALS
    # Spot pool: Uniswap's 5 bps tier, seeded deep enough that a $1M trade moves it ~0.2 %.
    spot_fee_bps: int = 5
    spot_seed_asset: int = 1_000_000_000
    # Perp market: Hyperliquid-like taker fee and leverage limits.
    taker_fee_ppm: int = 450  # 4.5 bps
    initial_margin_bps: int = 500  # 20x
    maintenance_margin_bps: int = 250
    liquidation_fee_bps: int = 50
    max_oracle_age: int = 86_400
    # A $1M trade fills 2 bps from the index.
    depth_asset: int = 5_000_000_000
    perp_pool_seed_asset: int = 50_000_000

    def asset_wei(self, units: int) -> int:
        return units * self.asset_unit

    def base_wei(self, units: int) -> int:
        return units * self.base_unit

    @property
    def spot_seed_base_wei(self) -> int:
        """Base that balances `spot_seed_asset` at `price_e8`."""
        asset_value = self.asset_wei(self.spot_seed_asset) * self.base_unit * PRICE_UNIT
        return asset_value // (self.price_e8 * self.asset_unit)


@dataclass(frozen=True)
class VaultRules:
    """The immutable rules of a BasisVault and its BasisHedge (constructor structs
    `BasisVault.Rules` and `IBasisHedge.Rules`), in one place: `vault_tuple` and
    `hedge_tuple` split them where each contract enforces them."""

    max_leverage_bps: int = 40_000  # short notional / perp equity <= 4x
    min_margin_ratio_bps: int = 2_000  # perp equity / notional >= 20 % after a rebalance
    critical_margin_ratio_bps: int = 1_000  # below 10 % anyone may deleverage
    max_delta_bps: int = 200  # |spot - short| <= 2 % of NAV after a rebalance
    max_slippage_bps: int = 50  # every fill within 0.5 %: spot of the oracle, the perp of its mark
    max_oracle_age: int = 3 * 3_600
    max_nav_loss_bps: int = 50  # one rebalance may cost at most 0.5 % of NAV
    max_management_fee_bps: int = 200
    max_performance_fee_bps: int = 2_000
    deposit_cap_ceiling: int = 10_000_000 * 10**6
    dead_man_interval: int = 3 * 86_400
    # All rebalances of one day together may cost at most 1.5 % of NAV (three worst cases).
    keeper_loss_budget_bps: int = 150
    # The asset's USD feed: Chainlink's USDC / USD heartbeat is 24 h, so 25 h.
    max_asset_oracle_age: int = 25 * 3_600
    # Entries and exits stop while the asset is more than 1 % off its peg.
    max_depeg_bps: int = 100

    VAULT_FIELDS = (
        "max_oracle_age",
        "max_asset_oracle_age",
        "max_depeg_bps",
        "max_management_fee_bps",
        "max_performance_fee_bps",
        "deposit_cap_ceiling",
    )
    HEDGE_FIELDS = (
        "max_leverage_bps",
        "min_margin_ratio_bps",
        "critical_margin_ratio_bps",
        "max_delta_bps",
        "max_slippage_bps",
        "max_oracle_age",
        "max_nav_loss_bps",
        "dead_man_interval",
        "keeper_loss_budget_bps",
    )

    def vault_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.VAULT_FIELDS)

    def hedge_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.HEDGE_FIELDS)
