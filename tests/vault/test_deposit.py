import ape

from tests.fixtures.vault import MAX
from tests.units import E8, USDC


def test_deposit__first__one_share_unit_per_asset_wei_times_offset(vault, alice, usdc):
    tx = vault.deposit(1_000 * USDC, alice, sender=alice)
    assert tx.return_value == vault.balanceOf(alice) == 1_000 * 10**12
    assert vault.idle() == vault.totalAssets() == 1_000 * USDC
    assert usdc.balanceOf(vault) == 1_000 * USDC
    (log,) = tx.events.filter(vault.Deposit)
    assert (log.sender, log.owner, log.assets, log.shares) == (
        alice.address,
        alice.address,
        1_000 * USDC,
        10**15,
    )


def test_deposit__preview_equals_execution(vault, alice, bob):
    vault.deposit(12_345 * USDC, alice, sender=alice)
    preview = vault.previewDeposit(777_777)
    assert vault.deposit(777_777, bob, sender=bob).return_value == preview


def test_mint__preview_equals_execution(vault, alice):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    cost = vault.previewMint(10**15 + 1)
    tx = vault.mint(10**15 + 1, alice, sender=alice)
    assert tx.return_value == cost == 1_000 * USDC + 1  # rounded up
    (log,) = tx.events.filter(vault.Deposit)
    assert log.assets == cost


def test_deposit__min_shares__enforced_in_the_call(vault, alice, bob):
    vault.deposit(12_345 * USDC, alice, sender=alice)
    preview = vault.previewDeposit(1_000 * USDC)
    with ape.reverts("vault: shares below minimum"):
        vault.deposit(1_000 * USDC, bob, preview + 1, sender=bob)
    assert vault.deposit(1_000 * USDC, bob, preview, sender=bob).return_value == preview


def test_deposit__zero__reverts(vault, alice):
    with ape.reverts("vault: zero assets"):
        vault.deposit(0, alice, sender=alice)
    with ape.reverts("vault: zero shares"):
        vault.mint(0, alice, sender=alice)


def test_deposit__invalid_receiver__reverts(vault, alice):
    with ape.reverts("vault: invalid receiver"):
        vault.deposit(USDC, ape.utils.ZERO_ADDRESS, sender=alice)
    with ape.reverts("vault: invalid receiver"):
        vault.deposit(USDC, vault, sender=alice)


def test_deposit__above_cap__reverts(vault, gov, alice):
    vault.set_deposit_cap(10_000 * USDC, sender=gov)
    assert vault.maxDeposit(alice) == 10_000 * USDC
    with ape.reverts("vault: deposit above maximum"):
        vault.deposit(10_000 * USDC + 1, alice, sender=alice)
    vault.deposit(10_000 * USDC, alice, sender=alice)
    assert vault.maxDeposit(alice) == 0 and vault.maxMint(alice) == 0
    with ape.reverts("vault: mint above maximum"):
        vault.mint(10**12, alice, sender=alice)


def test_deposit__paused__reverts_and_max_is_zero(vault, guardian, alice):
    vault.pause(sender=guardian)
    assert vault.maxDeposit(alice) == 0 and vault.maxMint(alice) == 0
    with ape.reverts("vault: deposits paused"):
        vault.deposit(USDC, alice, sender=alice)
    with ape.reverts("vault: deposits paused"):
        vault.mint(10**12, alice, sender=alice)
    vault.unpause(sender=guardian)
    vault.deposit(USDC, alice, sender=alice)


def test_deposit__stale_oracle__reverts_views_keep_valuing(vault, alice, warp, rules):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    warp(rules.max_oracle_age + 1)
    assert vault.maxDeposit(alice) == 0 and vault.maxRedeem(alice) == 0 and vault.maxWithdraw(alice) == 0
    assert vault.totalAssets() == 1_000 * USDC
    assert vault.convertToAssets(10**15) == 1_000 * USDC
    with ape.reverts("vault: stale oracle"):
        vault.deposit(USDC, alice, sender=alice)
    with ape.reverts("vault: stale oracle"):
        vault.redeem(10**12, alice, alice, sender=alice)


def test_deposit__without_allowance__reverts(vault, stranger, usdc):
    usdc.mint(stranger, USDC, sender=stranger)
    with ape.reverts("erc20: insufficient allowance"):
        vault.deposit(USDC, stranger, sender=stranger)


def test_donation__mints_no_one_value(vault, alice, bob, usdc, weth):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    price = vault.convertToAssets(10**12)
    usdc.transfer(vault, 50_000 * USDC, sender=bob)
    weth.mint(vault, 10**18, sender=bob)
    assert vault.totalAssets() == 1_000 * USDC
    assert vault.convertToAssets(10**12) == price


def test_inflation_attack__attacker_loses(vault, alice, bob, usdc):
    # OpenZeppelin's scenario: the attacker deposits 1 wei, donates a lot, and hopes the
    # victim's deposit rounds to zero shares. Donations are not NAV here, and virtual
    # shares make the rounding loss negligible.
    vault.deposit(1, bob, sender=bob)
    usdc.transfer(vault, 100_000 * USDC, sender=bob)
    shares = vault.deposit(100_000 * USDC, alice, sender=alice).return_value
    assert shares > 0
    assert vault.convertToAssets(vault.balanceOf(alice)) >= 100_000 * USDC - 1
    assert vault.convertToAssets(vault.balanceOf(bob)) <= 1


def test_max_deposit__tracks_oracle_moves(vault, alice, feed, feeder):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    feed.set_price(3_100 * E8, sender=feeder)
    assert vault.maxDeposit(alice) == vault.deposit_cap() - vault.totalAssets()
    assert vault.maxDeposit(alice) < MAX
