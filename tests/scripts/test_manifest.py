"""The deployment manifest: atomic, validated, never silently replaced."""

import json

import pytest

from keeper.chain.manifest import Manifest, load_manifest, manifest_path, write_manifest
from keeper.core.errors import UserError

A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def sample(chain_id: int = 31337, **overrides) -> Manifest:
    fields = dict(
        chain_id=chain_id,
        network="ethereum:local:node",
        genesis_hash="0x" + "ab" * 32,
        deploy_block=1,
        deployed_at=1_700_000_000,
        deployer=A,
        vault=B,
        hedge=A,
        hedge_blueprint=A,
        asset=B,
        base=B,
        price_feed=B,
        asset_feed=A,
        perp_market=B,
        spot_pool=B,
        owner=A,
        keeper=A,
        guardian=None,
        fee_recipient=A,
        feeder=A,
        venue_deployed=True,
        rules={"max_leverage_bps": 40_000},
        transactions=11,
        gas_used=15_000_000,
    )
    fields.update(overrides)
    return Manifest(**fields)


def test_manifest__round_trip_uses_the_env_folder(manifests):
    path = write_manifest(sample())
    assert path == manifests / "31337.json"
    assert load_manifest(31337) == sample()
    assert [p.name for p in manifests.iterdir()] == ["31337.json"]  # no temp file left
    data = json.loads(path.read_text())
    for key in (
        "vault",
        "hedge",
        "asset_feed",
        "hedge_blueprint",
        "asset",
        "base",
        "price_feed",
        "perp_market",
        "spot_pool",
        "owner",
        "keeper",
        "guardian",
    ):
        assert key in data
    assert data["rules"] == {"max_leverage_bps": 40_000}


def test_manifest__refuses_to_overwrite_unless_forced(manifests):
    write_manifest(sample())
    with pytest.raises(UserError, match=r"31337.json already exists .* pass --force"):
        write_manifest(sample(deploy_block=9))
    assert load_manifest(31337).deploy_block == 1
    write_manifest(sample(deploy_block=9), force=True)
    assert load_manifest(31337).deploy_block == 9


def test_manifest__unwritable_folder_is_refused_before_a_deploy(tmp_path):
    from keeper.chain.manifest import check_can_write

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"cannot create .*file/deployments for the manifest"):
        check_can_write(1, blocker / "deployments")


def test_manifest__missing_says_how_to_deploy(manifests):
    with pytest.raises(
        UserError, match=r"no deployment for chain 5: .*5.json does not exist .*ape run deploy"
    ):
        load_manifest(5)


def test_manifest__corrupt_or_invalid_is_refused(manifests):
    manifests.mkdir()
    manifest_path(7).write_text("{not json")
    with pytest.raises(UserError, match="is not readable JSON"):
        load_manifest(7)
    manifest_path(7).write_text(json.dumps({**sample(7).model_dump(), "vault": "0x1234"}))
    with pytest.raises(UserError, match="is not a valid manifest: vault"):
        load_manifest(7)


def test_manifest__file_for_another_chain_is_refused(manifests):
    manifests.mkdir()
    manifest_path(8).write_text(json.dumps(sample(9).model_dump()))
    with pytest.raises(UserError, match="describes chain 9, not 8"):
        load_manifest(8)


def test_manifest__a_v1_manifest_says_redeploy(manifests):
    manifests.mkdir()
    v1 = sample().model_dump()
    for key in ("hedge", "asset_feed", "hedge_blueprint"):
        del v1[key]
    manifest_path(31337).write_text(json.dumps({**v1, "schema_version": 1}))
    with pytest.raises(UserError) as info:
        load_manifest(31337)
    assert str(info.value) == (
        f"{manifest_path(31337)} describes a vault v1 (one contract, no `hedge`), which these tools no "
        "longer drive: deploy vault v2 with `ape run deploy --network <network> --account <alias> --force`"
    )


def test_manifest__addresses_must_be_checksummed():
    with pytest.raises(ValueError, match="not a checksummed address"):
        sample(vault=B.lower())
