"""The entry points, and nothing imports them: `basis-keeper` (`keeper`, with `replay`) and the
click commands behind `ape run deploy|deposit|withdraw|status|market|roles|admin` (scripts/
re-export them). Importing it reads `.env` from the working directory (variables already set win)."""

from dotenv import load_dotenv

load_dotenv(".env", override=False)
