"""``python -m calaudit``: the same as the ``calaudit`` command."""

from calaudit.cli import main

if __name__ == "__main__":
    main()
