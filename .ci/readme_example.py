"""Write the README's testing example to a file, so CI can type-check and run it as a user would.

Usage: python .ci/readme_example.py OUT_FILE
"""

import re
import sys
from pathlib import Path

HEADING = "## Testing your own code"


def testing_example(readme: str) -> str:
    """The first ```python block after HEADING: the example a user copies into their tests."""
    section = readme.split(HEADING, 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    if found is None:
        raise SystemExit(f"README.md: no python block after {HEADING!r}")
    return found.group(1)


if __name__ == "__main__":
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    Path(sys.argv[1]).write_text(testing_example(readme), encoding="utf-8")
