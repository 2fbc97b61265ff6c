"""`python -m telegent_async`: the same as the `telegent-orders` console script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
