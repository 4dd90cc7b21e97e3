"""The replay: the keeper's strategy over a real (or synthetic) funding history, and the
yield report. `keeper.replay.exact` runs it on the exact models (no chain);
`keeper.replay.report` turns a run into the report."""
