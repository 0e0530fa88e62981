#!/usr/bin/env python3
"""The services' CPU and memory limits in a compose file.

Usage: compose_limits.py [FILE]   (the compose file; standard input without FILE)
Prints "<service> <cpus> <memory bytes>" per service that has both
deploy.resources.limits cpus and memory, sorted by name; exit 1 on a memory
limit it cannot read. ops/run.sh (--limits, `limits`) and the deploy checks
(tests/scripts/deploy_check.py) both read limits through this file.
Needs PyYAML (python3-yaml) to read a file; mem_bytes needs nothing.
"""

import re
import sys

UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def mem_bytes(value):
    """Bytes of a compose memory value ("160M", "1g", "512", "64mb"): binary
    units, as docker counts them; None when it is not one."""
    m = re.fullmatch(r"\s*([0-9]+)\s*([bkmg]?)b?\s*", str(value).lower())
    return int(m.group(1)) * UNITS[m.group(2)] if m else None


def service_limits(doc):
    """[(service, cpus, memory bytes or None)] of the services of a parsed
    compose document that set both cpus and memory, sorted by name."""
    out = []
    for name, svc in sorted(((doc or {}).get("services") or {}).items()):
        lim = (((svc or {}).get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if "cpus" not in lim or "memory" not in lim:
            continue
        out.append((name, float(lim["cpus"]), mem_bytes(lim["memory"])))
    return out


def main(argv):
    import yaml  # only here: mem_bytes and its tests need no PyYAML

    if len(argv) > 1:
        with open(argv[1]) as f:
            doc = yaml.safe_load(f)
    else:
        doc = yaml.safe_load(sys.stdin)
    for name, cpus, mem in service_limits(doc):
        if mem is None:
            raw = doc["services"][name]["deploy"]["resources"]["limits"]["memory"]
            sys.exit("bad memory limit for %s: %r" % (name, raw))
        print(name, cpus, mem)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
