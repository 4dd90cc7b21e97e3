"""The oracle guard: a zero, negative, reverting or silent feed stops every entry, exit and
keeper call with a clear reason, while the views keep valuing at the last valid answer.

A real Chainlink aggregator can answer 0 or a negative number, or revert; the reference
PriceFeed refuses to, so these tests break the real feed the way a broken one looks:
its latest round's answer is overwritten in storage (anvil_setStorageAt), or its code is
replaced (anvil_setCode). Isolation restores the chain after each test.
"""

import ape
import pytest
from eth_utils import keccak

from tests.conftest import USDC

ROUNDS_SLOT = 3  # PriceFeed's `_rounds` (vyper -f layout); Round.answer is its first word


def _answer_slot(round_id: int) -> str:
    # vyper: HashMap[key] lives at keccak256(slot ++ key)
    return "0x" + keccak(ROUNDS_SLOT.to_bytes(32, "big") + round_id.to_bytes(32, "big")).hex()


def _set_answer(chain, feed, answer: int):
    word = (answer % 2**256).to_bytes(32, "big")  # two's complement for negatives
    chain.provider.make_request(
        "anvil_setStorageAt", [feed.address, _answer_slot(feed.latest_round()), "0x" + word.hex()]
    )
    assert feed.latestAnswer() == answer


def _break_code(chain, feed, code: str):
    chain.provider.make_request("anvil_setCode", [feed.address, code])


BROKEN = {
    "zero": lambda chain, feed: _set_answer(chain, feed, 0),
    "negative": lambda chain, feed: _set_answer(chain, feed, -1),
    "reverting": lambda chain, feed: _break_code(chain, feed, "0x60006000fd"),  # revert(0, 0)
    "no code": lambda chain, feed: _break_code(chain, feed, "0x"),
    "short answer": lambda chain, feed: _break_code(chain, feed, "0x60206000f3"),  # return 32 bytes
}


@pytest.fixture
def hedged(hedge):
    return hedge(100_000, 200_000, 2.0)


@pytest.mark.parametrize("broken", BROKEN)
def test_oracle__broken__entries_exits_and_keeper_revert(chain, hedged, feed, fish, keeper, deadline, broken):
    vault = hedged
    BROKEN[broken](chain, feed)
    reason = "vault: oracle answer invalid"
    with ape.reverts(reason):
        vault.deposit(USDC, fish, sender=fish)
    with ape.reverts(reason):
        vault.mint(10**12, fish, sender=fish)
    with ape.reverts(reason):
        vault.withdraw(USDC, fish, fish, sender=fish)
    with ape.reverts(reason):
        vault.redeem(10**12, fish, fish, sender=fish)
    with ape.reverts(reason):
        vault.rebalance(0, 0, 50, deadline, sender=keeper)
    with ape.reverts(reason):
        vault.emergency_deleverage(sender=fish)


@pytest.mark.parametrize("broken", BROKEN)
def test_oracle__broken__views_keep_the_last_valid_valuation(chain, hedged, feed, perp, fish, broken):
    vault = hedged
    nav, pps = vault.totalAssets(), vault.convertToAssets(10**12)
    assert vault.last_valid_price() == feed.latestAnswer()
    BROKEN[broken](chain, feed)
    # the spot leg is valued at the last valid answer; the perp's own equity is its own
    # business (here its oracle is the same broken feed, so the vault keeps its snapshot)
    assert vault.totalAssets() == nav
    assert vault.convertToAssets(10**12) == pps
    assert vault.maxDeposit(fish) == vault.maxMint(fish) == 0
    assert vault.maxWithdraw(fish) == vault.maxRedeem(fish) == 0
    assert vault.previewDeposit(USDC) > 0 and vault.previewRedeem(10**12) > 0
    assert vault.previewMint(10**12) > 0 and vault.previewWithdraw(USDC) > 0


def test_oracle__recovers__entries_work_again(chain, hedged, feed, feeder, fish):
    vault = hedged
    _set_answer(chain, feed, 0)
    with ape.reverts("vault: oracle answer invalid"):
        vault.deposit(USDC, fish, sender=fish)
    feed.set_price(3_000 * 10**8, sender=feeder)
    before = vault.balanceOf(fish)
    shares = vault.deposit(USDC, fish, sender=fish).return_value
    assert shares > 0 and vault.balanceOf(fish) == before + shares
