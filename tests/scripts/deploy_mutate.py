"""Makes a broken copy of one deploy file (tests/scripts/test_deploy_config.sh).

Usage: deploy_mutate.py FILE EDIT
EDIT is a Python expression over the file's text `s` (with `re` available) that
gives the new text; the file is rewritten with it. Exit 1 when the edit changed
nothing, so that a mutant that no longer applies is noticed.
"""
import re
import sys


def main(argv):
    path, edit = argv[1], argv[2]
    with open(path) as f:
        src = f.read()
    new = eval(edit, {"re": re}, {"s": src})
    if new == src:
        sys.exit("edit changed nothing")
    with open(path, "w") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
