"""`python -m threaddoc`."""

from threaddoc.cli import main

if __name__ == "__main__":
    main()
