"""The oracle guard: a zero, negative, reverting or silent feed stops every entry, exit and
keeper call with a clear reason, while the views keep valuing at the last valid answer.

A real Chainlink aggregator can answer 0 or a negative number, or revert; the reference
PriceFeed refuses to, so these tests break the real feed the way a broken one looks:
its latest round's answer is overwritten in storage (anvil_setStorageAt; the round is one
packed word, answer in the low 112 bits, so a negative answer is served by replacement
code), or its code is replaced (anvil_setCode). Isolation restores the chain after each test.

v2: the vault guards entries and exits ("vault: ..."), the hedge guards the keeper's and
the permissionless calls ("hedge: oracle answer invalid"). The hedge reads the feed with a
typed call, so a feed whose code reverts, is missing or answers short makes its calls revert
without a reason string (still reverting, which is the guard's point).
"""

import ape
import pytest

from tests.fixtures.vault import refuses_entries_and_exits
from tests.units import USDC

LATEST_SLOT = 2  # PriceFeed's `_latest` (vyper -f layout): answer | updated_at << 112 | round << 176
ANSWER_MASK = 2**112 - 1


def _set_answer(chain, feed, answer: int):
    # the latest round's word, with its answer bits replaced (timestamp and round kept)
    slot = "0x" + LATEST_SLOT.to_bytes(32, "big").hex()
    word = int(chain.provider.make_request("eth_getStorageAt", [feed.address, slot, "latest"]), 16)
    word = (word & ~ANSWER_MASK) | answer
    chain.provider.make_request(
        "anvil_setStorageAt", [feed.address, slot, "0x" + word.to_bytes(32, "big").hex()]
    )
    assert feed.latestAnswer() == answer


# latestRoundData() -> (1, -1, now, now, 1) for any call
NEGATIVE_FEED = "0x6001600052" + "7f" + "ff" * 32 + "602052" + "42604052426060526001608052" + "60a06000f3"


def _break_code(chain, feed, code: str):
    chain.provider.make_request("anvil_setCode", [feed.address, code])


BROKEN = {
    "zero": lambda chain, feed: _set_answer(chain, feed, 0),
    "negative": lambda chain, feed: _break_code(chain, feed, NEGATIVE_FEED),
    "reverting": lambda chain, feed: _break_code(chain, feed, "0x60006000fd"),  # revert(0, 0)
    "no code": lambda chain, feed: _break_code(chain, feed, "0x"),
    "short answer": lambda chain, feed: _break_code(chain, feed, "0x60206000f3"),  # return 32 bytes
}


@pytest.fixture
def hedged(hedged_vault):
    return hedged_vault(100_000, 200_000, 2.0)


@pytest.mark.parametrize("broken", BROKEN)
def test_oracle__broken__entries_exits_and_keeper_revert(
    chain, hedged, hedge, feed, alice, keeper, deadline, broken
):
    vault = hedged
    BROKEN[broken](chain, feed)
    reason = "vault: oracle answer invalid"
    refuses_entries_and_exits(vault, alice, reason)
    # the hedge reads its feed with a raw call, so every broken shape gets its own reason
    hedge_reason = "hedge: oracle answer invalid"
    with ape.reverts(hedge_reason):
        hedge.rebalance(0, 0, 50, deadline, sender=keeper)
    with ape.reverts(hedge_reason):
        hedge.emergency_deleverage(sender=alice)


@pytest.mark.parametrize("broken", BROKEN)
def test_oracle__broken__views_keep_the_last_valid_valuation(chain, hedged, feed, perp, alice, broken):
    vault = hedged
    nav, pps = vault.totalAssets(), vault.convertToAssets(10**12)
    assert vault.last_valid_price() == feed.latestAnswer()
    BROKEN[broken](chain, feed)
    # the spot leg is valued at the last valid answer; the perp's own equity is its own
    # business (here its oracle is the same broken feed, so the vault keeps its snapshot)
    assert vault.totalAssets() == nav
    assert vault.convertToAssets(10**12) == pps
    assert vault.maxDeposit(alice) == vault.maxMint(alice) == 0
    assert vault.maxWithdraw(alice) == vault.maxRedeem(alice) == 0
    assert vault.previewDeposit(USDC) > 0 and vault.previewMint(10**12) > 0
    # v2: previewRedeem/previewWithdraw price the unwind from the venue's short, which the
    # market cannot report without its oracle; ERC-4626 lets a preview revert when the
    # exit itself would (and it does: exits are closed, maxRedeem is 0 above).


def test_oracle__recovers__entries_work_again(chain, hedged, feed, feeder, alice):
    vault = hedged
    _set_answer(chain, feed, 0)
    with ape.reverts("vault: oracle answer invalid"):
        vault.deposit(USDC, alice, sender=alice)
    feed.set_price(3_000 * 10**8, sender=feeder)
    before = vault.balanceOf(alice)
    shares = vault.deposit(USDC, alice, sender=alice).return_value
    assert shares > 0 and vault.balanceOf(alice) == before + shares
