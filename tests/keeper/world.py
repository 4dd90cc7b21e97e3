"""The strategy tests' world: `keeper.model.world.World` (the reference venue plus a
BasisVault transcribed call by call, sharing nothing with the strategy's own vault model),
and helpers to feed it funding views and proposals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from keeper.model.world import EMERGENCY_BUFFER_BPS, VAULT, World, require
from keeper.sources.base import FundingInfo, FundingPoint, FundingView
from keeper.strategy import Action, EmergencyDeleverage, Rebalance

__all__ = ["EMERGENCY_BUFFER_BPS", "VAULT", "World", "apply", "flat_view", "require"]


# ---------------------------------------------------------------------- funding views


def flat_view(now: int, rate: str | Decimal, venue: str = "onchain", hours: int = 48) -> FundingView:
    """A venue that has paid `rate` per hour for `hours` (hourly prints up to now)."""
    at = datetime.fromtimestamp(now, tz=UTC)
    rate = Decimal(rate)
    info = FundingInfo(venue, "ETH-USD", rate, 3_600, None, None, None, at)
    history = tuple(FundingPoint(at - timedelta(hours=h), rate, rate, 3_600) for h in range(hours, -1, -1))
    return FundingView(info, history)


def apply(world: World, action: Action) -> None:
    """Execute a proposal on the world (raises ModelRevert if the vault refuses it)."""
    if isinstance(action, Rebalance):
        world.rebalance(action.target_short, action.target_margin, action.max_slippage_bps)
    elif isinstance(action, EmergencyDeleverage):
        world.emergency_deleverage()
