"""`python -m convcalc`."""

from convcalc.cli import main

if __name__ == "__main__":
    main()
