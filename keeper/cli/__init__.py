"""Click commands behind `ape run deploy|deposit|withdraw|status|market` (scripts/ re-export them)."""
