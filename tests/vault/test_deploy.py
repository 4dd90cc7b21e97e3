import ape
import pytest

from keeper.venue import VaultRules

CODE_SIZE_LIMIT = 24_576  # EIP-170


def test_deploy__rules_and_roles(vault, rules, gov, keeper, guardian, treasury, deployer, usdc, venue):
    assert vault.owner() == gov.address
    assert vault.is_keeper(keeper)
    assert vault.guardian() == guardian.address
    assert vault.fee_recipient() == treasury.address
    assert not vault.is_keeper(deployer)
    assert vault.decimals() == usdc.decimals() + vault.DECIMALS_OFFSET() == 12
    assert vault.asset() == usdc.address and vault.base() == venue.base.address
    assert vault.max_leverage_bps() == rules.max_leverage_bps
    assert vault.min_margin_ratio_bps() == rules.min_margin_ratio_bps
    assert vault.critical_margin_ratio_bps() == rules.critical_margin_ratio_bps
    assert vault.max_delta_bps() == rules.max_delta_bps
    assert vault.max_slippage_bps() == rules.max_slippage_bps
    assert vault.max_oracle_age() == rules.max_oracle_age
    assert vault.max_nav_loss_bps() == rules.max_nav_loss_bps
    assert vault.max_management_fee_bps() == rules.max_management_fee_bps
    assert vault.max_performance_fee_bps() == rules.max_performance_fee_bps
    assert vault.deposit_cap_ceiling() == vault.deposit_cap() == rules.deposit_cap_ceiling
    assert vault.dead_man_interval() == rules.dead_man_interval


def test_deploy__fits_the_code_size_limit(vault, chain):
    size = len(chain.provider.web3.eth.get_code(vault.address))
    assert size <= CODE_SIZE_LIMIT, size


# Every state-changing entry point the vault has. A new one must be added here on purpose,
# after checking that it cannot touch a rule (the rules are immutables: no storage slot).
MUTATING = {
    "approve", "transfer", "transferFrom",  # shares
    "deposit", "mint", "withdraw", "redeem",  # ERC-4626
    "rebalance", "emergency_deleverage", "shutdown", "pause", "unpause",
    "set_keeper", "set_guardian", "set_deposit_cap", "set_fees", "set_fee_recipient",
    "transfer_ownership", "accept_ownership",
}  # fmt: skip


def test_deploy__no_setter_can_change_a_rule(vault, rules):
    assert {m.name for m in vault.contract_type.mutable_methods} == MUTATING
    # each rule reads back as deployed, from an immutable getter
    for name, value in vars(rules).items():
        assert getattr(vault, name)() == value, name


def test_deploy__implements_every_erc4626_function(vault):
    abi = {(m.name, len(m.inputs)) for m in vault.contract_type.abi if m.type == "function"}
    for sig in [
        ("asset", 0), ("totalAssets", 0), ("convertToShares", 1), ("convertToAssets", 1),
        ("maxDeposit", 1), ("previewDeposit", 1), ("deposit", 2), ("maxMint", 1), ("previewMint", 1),
        ("mint", 2), ("maxWithdraw", 1), ("previewWithdraw", 1), ("withdraw", 3), ("maxRedeem", 1),
        ("previewRedeem", 1), ("redeem", 3),
        ("deposit", 3), ("withdraw", 4), ("redeem", 4),  # the slippage-protected forms
    ]:  # fmt: skip
        assert sig in abi, sig


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("max_leverage_bps", 0, "vault: zero max leverage"),
        ("critical_margin_ratio_bps", 0, "vault: zero critical margin ratio"),
        ("critical_margin_ratio_bps", 2_000, "vault: critical ratio >= min ratio"),
        ("min_margin_ratio_bps", 10_001, "vault: min margin ratio above 100%"),
        ("min_margin_ratio_bps", 400, "vault: critical ratio >= min ratio"),
        ("max_delta_bps", 10_001, "vault: max delta above 100%"),
        ("max_slippage_bps", 0, "vault: zero max slippage"),
        ("max_slippage_bps", 501, "vault: max slippage above cap"),
        ("max_oracle_age", 0, "vault: zero max oracle age"),
        ("max_nav_loss_bps", 10_001, "vault: max nav loss above 100%"),
        ("max_management_fee_bps", 501, "vault: management fee cap too high"),
        ("max_performance_fee_bps", 5_001, "vault: performance fee cap too high"),
        ("deposit_cap_ceiling", 0, "vault: zero deposit cap ceiling"),
        ("dead_man_interval", 0, "vault: zero dead-man interval"),
    ],
)
def test_deploy__invalid_rule__reverts(create_vault, field, value, reason):
    with ape.reverts(reason):
        create_vault(VaultRules(**{field: value}))


def test_deploy__min_ratio_below_venue_initial_margin__reverts(create_vault):
    with ape.reverts("vault: min ratio below venue IM"):
        create_vault(VaultRules(min_margin_ratio_bps=499, critical_margin_ratio_bps=100))


def test_deploy__zero_owner__reverts(create_vault):
    with ape.reverts("vault: zero owner"):
        create_vault(owner=ape.utils.ZERO_ADDRESS)
