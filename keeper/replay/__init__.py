"""The replay: the keeper's strategy over a real (or synthetic) funding history, and the
yield report. `keeper.replay.driver` is the loop; `keeper.replay.exact` runs it on the exact
models (no chain), `keeper.replay.anvil` on a fresh anvil with the real keeper;
`keeper.replay.report` turns a run into the report."""
