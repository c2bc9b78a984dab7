#!/usr/bin/env bash
# Keeps the shared cargo target directory from filling the disk. Builds with other feature sets
# or dependency versions leave stale copies of every heavy crate (datafusion is ~1 GB a copy)
# beside the current ones, and nothing ever deletes them. When less than MIN_FREE_GB (15) is
# free on the target's disk, this deletes incremental caches and, per crate artifact, every copy
# but the newest. Worst case, a still-used older copy is rebuilt: slower, never wrong.
#
# Usage: scripts/prune-target.sh [TARGET_DIR]   (default $CARGO_TARGET_DIR)
set -euo pipefail
TARGET="${1:-${CARGO_TARGET_DIR:?set CARGO_TARGET_DIR or pass the target directory}}"
MIN_FREE_GB="${MIN_FREE_GB:-15}"
[[ -d "$TARGET" ]] || exit 0
free_gb() { df -Pk "$TARGET" | awk 'NR==2 {print int($4 / 1048576)}'; }
before=$(free_gb)
if ((before >= MIN_FREE_GB)); then
    echo "    target dir: ${before} GB free, nothing to prune"
    exit 0
fi
rm -rf "$TARGET"/*/incremental
python3 - "$TARGET" <<'PY'
import collections, os, re, sys
target = sys.argv[1]
for profile in os.listdir(target):
    deps = os.path.join(target, profile, "deps")
    if not os.path.isdir(deps):
        continue
    groups = collections.defaultdict(list)
    for f in os.listdir(deps):
        m = re.match(r"^(.*)-([0-9a-f]{16})(\..*)?$", f)
        if m:
            p = os.path.join(deps, f)
            groups[(m.group(1), m.group(3) or "")].append((os.stat(p).st_mtime, p))
    for files in groups.values():
        files.sort()
        for _, p in files[:-1]:
            os.remove(p)
PY
echo "    target dir: pruned, ${before} GB -> $(free_gb) GB free"
