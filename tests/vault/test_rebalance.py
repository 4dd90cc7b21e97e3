import ape

from tests.conftest import E8, SIZE, USDC
from tests.vault.conftest import delta_bps, hedge_targets


def test_rebalance__open__deploys_idle_into_a_neutral_hedge(vault, perp, keeper, fish, usdc, deadline):
    vault.deposit(300_000 * USDC, fish, sender=fish)
    nav_before = vault.totalAssets()
    short, margin = hedge_targets(vault, perp, 2.0)
    tx = vault.rebalance(short, margin, 50, deadline, sender=keeper)
    assert vault.short_size() == short
    assert abs(delta_bps(vault, perp)) <= 5
    assert perp.position(vault).size == -short
    nav_after = vault.totalAssets()
    assert nav_before - nav_after < nav_before * 10 // 10_000  # < 10 bps entry cost
    (log,) = tx.events.filter(vault.Rebalanced)
    assert log.short_after == short and log.short_before == 0
    assert log.cost == nav_before - nav_after
    print("open cost bps", (nav_before - nav_after) * 10_000 / nav_before, "idle", vault.idle())
