"""Check, on the GPU machine, that the wheels installed with ``--no-deps`` into SITE find every
package they require (in SITE or in the machine's image), at a version they accept; and that
nothing in SITE shadows a different version of an image package (two of one package confuse
imports). Exit 1 naming what is missing, so run.sh stops before it spends device time; a
version outside a requirement's range is only a warning (it often works; the import check after
this one tells).

    python3 scripts/gpu/check_deps.py /tmp/site
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def main(site: str) -> int:
    site_dists = list(metadata.distributions(path=[site]))
    installed = {}
    for dist in metadata.distributions():  # sys.path order: SITE first when it is on PYTHONPATH
        installed.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version)
    env = default_environment()
    problems, older = [], []
    for dist in site_dists:
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            have = installed.get(canonicalize_name(req.name))
            if have is None:
                problems.append(f"{dist.metadata['Name']} needs {req}: not installed")
            elif req.specifier and not req.specifier.contains(have, prereleases=True):
                older.append(f"{dist.metadata['Name']} needs {req}: found {have}")
    for dist in site_dists:
        name = canonicalize_name(dist.metadata["Name"])
        others = [d.version for d in metadata.distributions(name=dist.metadata["Name"]) if d.version != dist.version]
        if others:
            print(f"note: {name} {dist.version} from {site} shadows the image's {', '.join(others)}")
    print(f"{len(site_dists)} packages in {site}; requirements checked against {len(installed)} installed")
    for line in older:  # may work all the same: the import check and the chapters tell
        print(f"warning: {line} (pin that version in scripts/gpu/wheels.txt if an import fails)")
    for line in problems:
        print(f"MISSING: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(Path("/tmp/site"))))
