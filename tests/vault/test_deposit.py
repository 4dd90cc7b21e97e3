import ape

from tests.conftest import E8, USDC
from tests.vault.conftest import MAX


def test_deposit__first__one_share_unit_per_asset_wei_times_offset(vault, fish, usdc):
    tx = vault.deposit(1_000 * USDC, fish, sender=fish)
    assert tx.return_value == vault.balanceOf(fish) == 1_000 * 10**12
    assert vault.idle() == vault.totalAssets() == 1_000 * USDC
    assert usdc.balanceOf(vault) == 1_000 * USDC
    (log,) = tx.events.filter(vault.Deposit)
    assert (log.sender, log.owner, log.assets, log.shares) == (
        fish.address,
        fish.address,
        1_000 * USDC,
        10**15,
    )


def test_deposit__preview_equals_execution(vault, fish, whale):
    vault.deposit(12_345 * USDC, fish, sender=fish)
    preview = vault.previewDeposit(777_777)
    assert vault.deposit(777_777, whale, sender=whale).return_value == preview


def test_mint__preview_equals_execution(vault, fish):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    cost = vault.previewMint(10**15 + 1)
    tx = vault.mint(10**15 + 1, fish, sender=fish)
    assert tx.return_value == cost == 1_000 * USDC + 1  # rounded up
    (log,) = tx.events.filter(vault.Deposit)
    assert log.assets == cost


def test_deposit__min_shares__enforced_in_the_call(vault, fish, whale):
    vault.deposit(12_345 * USDC, fish, sender=fish)
    preview = vault.previewDeposit(1_000 * USDC)
    with ape.reverts("vault: shares below minimum"):
        vault.deposit(1_000 * USDC, whale, preview + 1, sender=whale)
    assert vault.deposit(1_000 * USDC, whale, preview, sender=whale).return_value == preview


def test_deposit__zero__reverts(vault, fish):
    with ape.reverts("vault: zero assets"):
        vault.deposit(0, fish, sender=fish)
    with ape.reverts("vault: zero shares"):
        vault.mint(0, fish, sender=fish)


def test_deposit__invalid_receiver__reverts(vault, fish):
    with ape.reverts("vault: invalid receiver"):
        vault.deposit(USDC, ape.utils.ZERO_ADDRESS, sender=fish)
    with ape.reverts("vault: invalid receiver"):
        vault.deposit(USDC, vault, sender=fish)


def test_deposit__above_cap__reverts(vault, gov, fish):
    vault.set_deposit_cap(10_000 * USDC, sender=gov)
    assert vault.maxDeposit(fish) == 10_000 * USDC
    with ape.reverts("vault: deposit above maximum"):
        vault.deposit(10_000 * USDC + 1, fish, sender=fish)
    vault.deposit(10_000 * USDC, fish, sender=fish)
    assert vault.maxDeposit(fish) == 0 and vault.maxMint(fish) == 0
    with ape.reverts("vault: mint above maximum"):
        vault.mint(10**12, fish, sender=fish)


def test_deposit__paused__reverts_and_max_is_zero(vault, guardian, fish):
    vault.pause(sender=guardian)
    assert vault.maxDeposit(fish) == 0 and vault.maxMint(fish) == 0
    with ape.reverts("vault: deposits paused"):
        vault.deposit(USDC, fish, sender=fish)
    with ape.reverts("vault: deposits paused"):
        vault.mint(10**12, fish, sender=fish)
    vault.unpause(sender=guardian)
    vault.deposit(USDC, fish, sender=fish)


def test_deposit__stale_oracle__reverts_views_keep_valuing(vault, fish, warp, rules):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    warp(rules.max_oracle_age + 1)
    assert vault.maxDeposit(fish) == 0 and vault.maxRedeem(fish) == 0 and vault.maxWithdraw(fish) == 0
    assert vault.totalAssets() == 1_000 * USDC
    assert vault.convertToAssets(10**15) == 1_000 * USDC
    with ape.reverts("vault: stale oracle"):
        vault.deposit(USDC, fish, sender=fish)
    with ape.reverts("vault: stale oracle"):
        vault.redeem(10**12, fish, fish, sender=fish)


def test_deposit__without_allowance__reverts(vault, stranger, usdc):
    usdc.mint(stranger, USDC, sender=stranger)
    with ape.reverts("erc20: insufficient allowance"):
        vault.deposit(USDC, stranger, sender=stranger)


def test_donation__mints_no_one_value(vault, fish, whale, usdc, weth):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    price = vault.convertToAssets(10**12)
    usdc.transfer(vault, 50_000 * USDC, sender=whale)
    weth.mint(vault, 10**18, sender=whale)
    assert vault.totalAssets() == 1_000 * USDC
    assert vault.convertToAssets(10**12) == price


def test_inflation_attack__attacker_loses(vault, fish, whale, usdc):
    # OpenZeppelin's scenario: the attacker deposits 1 wei, donates a lot, and hopes the
    # victim's deposit rounds to zero shares. Donations are not NAV here, and virtual
    # shares make the rounding loss negligible.
    vault.deposit(1, whale, sender=whale)
    usdc.transfer(vault, 100_000 * USDC, sender=whale)
    shares = vault.deposit(100_000 * USDC, fish, sender=fish).return_value
    assert shares > 0
    assert vault.convertToAssets(vault.balanceOf(fish)) >= 100_000 * USDC - 1
    assert vault.convertToAssets(vault.balanceOf(whale)) <= 1


def test_max_deposit__tracks_oracle_moves(vault, fish, feed, feeder):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    feed.set_price(3_100 * E8, sender=feeder)
    assert vault.maxDeposit(fish) == vault.deposit_cap() - vault.totalAssets()
    assert vault.maxDeposit(fish) < MAX
