#!/usr/bin/env bash
# The container image without a container engine: assembles the root
# filesystem the final (FROM scratch) stage of the Dockerfile describes,
# from the same build output, and runs its ENTRYPOINT in it with chroot on a
# fixture tree. Prints the image size. Needs root (chroot); podman/buildah,
# when present, build the real image instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
OUT=$REPO/target/image
rm -rf "$OUT"; mkdir -p "$OUT/rootfs"
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
  podman build -t rdma-monitor -f Dockerfile .
  podman image ls rdma-monitor
  exit 0
fi
# chroot needs root: elsewhere this part is a recorded skip.
. tests/skips.sh
[ "$(id -u)" -eq 0 ] || skip "deploy-test image" "not root and no podman: the image root cannot be run with chroot"
make -s static > /dev/null
# The final stage: COPY --from=build /src/<path> <dest>, ENV, ENTRYPOINT.
stage=$(awk '/^FROM scratch/{f=1; next} f' Dockerfile)
envs=()
while read -r kw rest; do
  case "$kw" in
    COPY)
      set -- $rest
      src=${2#/src/}; dest=$3
      # The build output lives where cargo put it here.
      case "$src" in target/*) src="${CARGO_TARGET_DIR:-$REPO/target}/${src#target/}" ;; *) src="$REPO/$src" ;; esac
      mkdir -p "$OUT/rootfs$(dirname "$dest")"
      cp "$src" "$OUT/rootfs$dest" ;;
    ENV) envs+=("$rest") ;;
    ENTRYPOINT) entry=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])))' "$rest") ;;
  esac
done <<< "$stage"
size=$(du -sb "$OUT/rootfs" | cut -f1)
echo "image root filesystem: $(find "$OUT/rootfs" -type f | sed "s|$OUT/rootfs||" | tr '\n' ' ')"
echo "image size: $size bytes ($(python3 -c "print(round($size/1048576, 2))") MiB)"
# Run it: the fixture tree inside the root, as /sys would be bind-mounted.
mkdir -p "$OUT/rootfs/sys-fixture" "$OUT/rootfs/proc/sys/kernel"
cp -a fixtures/sysfs/node-mixed/. "$OUT/rootfs/sys-fixture/"
echo "image-test" > "$OUT/rootfs/proc/sys/kernel/hostname"
env -i "${envs[@]}" RDMA_MON_GENERAL__SYSFS_ROOT=/sys-fixture \
  "$(command -v chroot)" "$OUT/rootfs" $entry --once > "$OUT/once.json"
python3 - "$OUT/once.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s["devices"]) == 6, s["devices"]
assert s["hostname"] == "image-test", s["hostname"]
print("image: ENTRYPOINT ran in the assembled root, one cycle over", len(s["devices"]), "devices")
PY
env -i "${envs[@]}" "$(command -v chroot)" "$OUT/rootfs" $entry --version
