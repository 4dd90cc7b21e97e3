"""Deploy configs: the committed ones load, and every mistake names its key."""

import copy
import dataclasses

import pytest
import yaml

from keeper.core.errors import UserError
from keeper.core.rules import VaultRules, VenueParams
from keeper.ops.config import config_path, load_deploy_config, parse_deploy_config
from tests.fixtures.data import REPO

RULES = dataclasses.asdict(VaultRules())
GOOD = {"rules": RULES}


def error_of(data) -> str:
    with pytest.raises(UserError) as info:
        parse_deploy_config(data, "cfg.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("network", ["local", "sepolia"])
def test_config__committed_files_load(network):
    config = load_deploy_config(config_path(network, REPO / "deploy"))
    assert config.rules.critical_margin_ratio_bps < config.rules.min_margin_ratio_bps
    assert config.venue.mode == "deploy"


def test_config__local_file_matches_the_tested_defaults():
    config = load_deploy_config(REPO / "deploy" / "local.yaml")
    assert config.rules.to_rules() == VaultRules()
    assert config.venue.deploy.to_params() == VenueParams()
    assert not config.needs_owner_calls


def test_config__fork_network_uses_its_parent_file():
    assert config_path("sepolia-fork").name == "sepolia.yaml"


def test_config__unknown_key_is_named():
    data = copy.deepcopy(GOOD)
    data["rules"]["max_leverge_bps"] = 1
    assert error_of(data) == "cfg.yaml: rules.max_leverge_bps: unknown key"


def test_config__missing_rule_is_named():
    data = copy.deepcopy(GOOD)
    del data["rules"]["max_oracle_age"]
    assert error_of(data) == "cfg.yaml: rules.max_oracle_age: missing"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_slippage_bps", 501, "rules.max_slippage_bps: Input should be less than or equal to 500"),
        ("max_leverage_bps", 0, "rules.max_leverage_bps: Input should be greater than 0"),
        ("max_oracle_age", "3h", "rules.max_oracle_age: Input should be a valid integer"),
        ("max_delta_bps", 2.5, "rules.max_delta_bps: Input should be a valid integer"),
        (
            "critical_margin_ratio_bps",
            2_000,
            "critical_margin_ratio_bps (2000) must be below min_margin_ratio_bps",
        ),
        # The new rules mirror BasisVault's and BasisHedge's constructor asserts.
        (
            "keeper_loss_budget_bps",
            49,
            "rules: keeper_loss_budget_bps (49) must be at least max_nav_loss_bps (50): the day's budget "
            "must allow one rebalance",
        ),
        (
            "keeper_loss_budget_bps",
            10_001,
            "rules.keeper_loss_budget_bps: Input should be less than or equal to 10000",
        ),
        ("max_asset_oracle_age", 0, "rules.max_asset_oracle_age: Input should be greater than 0"),
        ("max_depeg_bps", 1_001, "rules.max_depeg_bps: Input should be less than or equal to 1000"),
        ("max_depeg_bps", -1, "rules.max_depeg_bps: Input should be greater than or equal to 0"),
    ],
)
def test_config__bad_rule_says_what_is_wrong(key, value, expected):
    data = copy.deepcopy(GOOD)
    data["rules"][key] = value
    assert expected in error_of(data)


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        ({"roles": {"keeper": "0x1234"}}, None, "roles.keeper: '0x1234' is not an address"),
        ({"roles": {"owner": None}}, None, "roles.owner: must be 'deployer' or an address"),
        ({"vault": {"symbol": "TOOLONG"}}, None, "vault.symbol: String should have at most 5 characters"),
        (
            {"vault": {"management_fee_bps": 300}},
            None,
            "management_fee_bps (300) is above rules.max_management_fee",
        ),
        ({"vault": {"deposit_cap": 10**20}}, None, "vault.deposit_cap (100000000000000000000) is above"),
        (
            {"venue": {"deploy": {"price_usd": -1}}},
            None,
            "venue.deploy.price_usd: Input should be greater than 0",
        ),
        ({"venue": {"deploy": {"params": {"spot_fee": 5}}}}, None, "unknown venue parameter(s) ['spot_fee']"),
        ({"venue": {"deploy": {"params": {"taker_fee_ppm": "x"}}}}, None, "taker_fee_ppm must be int"),
        ({"venue": {"mode": "existing"}}, None, "mode is 'existing' but venue.existing lists no addresses"),
        ({"venue": {"mode": "rent"}}, None, "venue.mode: Input should be 'deploy' or 'existing'"),
        (
            {"venue": {"deploy": {"params": {"initial_margin_bps": 2_500}}}},
            None,
            "rules.min_margin_ratio_bps (2000) is below the venue's initial margin (2500 bps)",
        ),
    ],
)
def test_config__bad_section_says_what_is_wrong(section, value, expected):
    data = {**copy.deepcopy(GOOD), **section}
    assert expected in error_of(data)


def test_config__every_violation_on_one_line():
    data = copy.deepcopy(GOOD)
    data["rules"].update(critical_margin_ratio_bps=3_000, keeper_loss_budget_bps=10)
    assert error_of(data) == (
        "cfg.yaml: rules: critical_margin_ratio_bps (3000) must be below min_margin_ratio_bps (2000); "
        "keeper_loss_budget_bps (10) must be at least max_nav_loss_bps (50): the day's budget must allow "
        "one rebalance"
    )
    data = copy.deepcopy(GOOD)
    data["rules"].update(max_depeg_bps=2_000, max_asset_oracle_age=-1)
    message = error_of(data)
    assert "rules.max_asset_oracle_age: Input should be greater than 0" in message
    assert "; rules.max_depeg_bps: Input should be less than or equal to 1000" in message


def test_config__new_rules_are_required():
    for key in ("keeper_loss_budget_bps", "max_asset_oracle_age", "max_depeg_bps"):
        data = copy.deepcopy(GOOD)
        del data["rules"][key]
        assert error_of(data) == f"cfg.yaml: rules.{key}: missing"


def test_config__existing_venue_names_the_asset_feed():
    addresses = {k: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" for k in ("asset", "base", "price_feed")}
    addresses |= {"spot_pool": addresses["asset"], "perp_market": addresses["asset"]}
    message = error_of({**GOOD, "venue": {"mode": "existing", "existing": addresses}})
    assert message == "cfg.yaml: venue.existing.asset_feed: missing"


def test_config__deployed_asset_feed_must_start_pegged():
    data = {**copy.deepcopy(GOOD), "venue": {"deploy": {"params": {"asset_price_e8": 97_000_000}}}}
    assert "asset_price_e8 (97000000) is more than rules.max_depeg_bps (100) from 1 USD" in error_of(data)


def test_config__addresses_are_checksummed():
    lower = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    config = parse_deploy_config({**GOOD, "roles": {"keeper": lower, "guardian": None}})
    assert config.roles.keeper == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert config.roles.guardian is None


def test_config__yaml_syntax_error_gives_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  max_leverage_bps: [1\n")
    with pytest.raises(UserError, match=r"bad.yaml: line \d+ is not valid YAML"):
        load_deploy_config(path)


def test_config__missing_file(tmp_path):
    with pytest.raises(UserError, match=r"no deploy config at .*nope\.yaml"):
        load_deploy_config(tmp_path / "nope.yaml")


def test_config__not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(UserError, match="expected a mapping"):
        load_deploy_config(path)
