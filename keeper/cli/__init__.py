"""Click commands behind `ape run deploy|deposit|withdraw|status|market|roles` (scripts/ re-export
them). Importing it reads `.env` from the working directory (variables already set win)."""

from dotenv import load_dotenv

load_dotenv(".env", override=False)
