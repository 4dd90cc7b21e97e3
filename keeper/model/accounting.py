"""Moved: the share side now lives in the one vault model, `keeper.model.vault`. This
re-export stays only until every importer reads the constants from there."""

from keeper.model.vault import DECIMALS_OFFSET, PPS_UNIT, VIRTUAL_SHARES, YEAR

__all__ = ["DECIMALS_OFFSET", "PPS_UNIT", "VIRTUAL_SHARES", "YEAR"]
