"""The strategy tests' world: the one vault + hedge model (`keeper.model.vault.BasisModel`)
on the reference venue models, and helpers to feed it funding views and proposals.

The strategy rebuilds the same model from a `VaultState` (`BasisModel.from_state`); the
world keeps the market's real funding index, position cost and the hedge's books, so a
proposal the strategy got wrong is refused here with the contract's revert reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from keeper.bot.strategy import Action, EmergencyDeleverage, Rebalance, Unwind
from keeper.data.records import FundingInfo, FundingPoint, FundingView
from keeper.model.vault import EMERGENCY_BUFFER_BPS, HEDGE, BasisModel, require

__all__ = ["EMERGENCY_BUFFER_BPS", "HEDGE", "LP", "World", "apply", "flat_view", "path_view", "require"]

LP = "lp"  # the depositor the tests fund the vault with


class World(BasisModel):
    """The model; its feeder keeps the asset's USD feed fresh at 1.00 with every push."""

    def push_price(self, price_e8: int) -> None:
        super().push_price(price_e8)
        self.push_asset_price()

    def fund(self, assets: int) -> None:
        """A depositor brings `assets` (nothing for 0)."""
        if assets:
            self.push_asset_price()
            self.deposit(assets, LP)


# ---------------------------------------------------------------------- funding views


def flat_view(now: int, rate: str | Decimal, venue: str = "onchain", hours: int = 48) -> FundingView:
    """A venue that has paid `rate` per hour for `hours` (hourly prints up to now)."""
    at = datetime.fromtimestamp(now, tz=UTC)
    rate = Decimal(rate)
    info = FundingInfo(venue, "ETH-USD", rate, 3_600, None, None, None, at)
    history = tuple(FundingPoint(at - timedelta(hours=h), rate, rate, 3_600) for h in range(hours, -1, -1))
    return FundingView(info, history)


def path_view(now: int, *segments: tuple[int, str], venue: str = "onchain") -> FundingView:
    """A venue whose hourly prints follow `segments`, (hours, rate per hour) oldest first,
    the last ending now; its live rate is the last segment's."""
    at = datetime.fromtimestamp(now, tz=UTC)
    rates = [Decimal(rate) for hours, rate in segments for _ in range(hours)]
    info = FundingInfo(venue, "ETH-USD", rates[-1], 3_600, None, None, None, at)
    history = tuple(
        FundingPoint(at - timedelta(hours=len(rates) - 1 - i), rate, rate, 3_600)
        for i, rate in enumerate(rates)
    )
    return FundingView(info, history)


def apply(world: World, action: Action) -> None:
    """Execute a proposal on the world (raises ModelRevert if the contracts refuse it)."""
    if isinstance(action, Rebalance):
        world.rebalance(action.target_short, action.target_margin, action.max_slippage_bps)
    elif isinstance(action, EmergencyDeleverage):
        world.emergency_deleverage()
    elif isinstance(action, Unwind):
        world.unwind(action.max_size)
