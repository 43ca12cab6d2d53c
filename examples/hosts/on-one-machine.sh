#!/usr/bin/env bash
# Runs examples/hosts/pipeline.yaml on this one machine, with two network namespaces
# standing for edge1 and edge2 (needs root, and iproute2). Everything it creates is
# removed at the end, however the run ends.
#
#   sudo examples/hosts/on-one-machine.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=tp$$
net=10.213.$((RANDOM % 200 + 20))
python=$(command -v python3)
file=$(mktemp --suffix=.yaml)

cleanup() {
  for i in 1 2; do
    ip netns pids "$tag-$i" 2>/dev/null | xargs -r kill -9 || true
    ip link del "${tag}v$i" 2>/dev/null || true
    ip netns del "$tag-$i" 2>/dev/null || true
  done
  ip link del "${tag}br" 2>/dev/null || true
  rm -f "$file"
}
trap cleanup EXIT

ip link add "${tag}br" type bridge
ip addr add "$net.1/24" dev "${tag}br"
ip link set "${tag}br" up
for i in 1 2; do
  ip netns add "$tag-$i"
  ip link add "${tag}v$i" type veth peer name eth0 netns "$tag-$i"
  ip link set "${tag}v$i" master "${tag}br" up
  ip -n "$tag-$i" addr add "$net.$((i + 1))/24" dev eth0
  ip -n "$tag-$i" link set eth0 up
  ip -n "$tag-$i" link set lo up
done

# the example file, with the namespaces' addresses and `ip netns exec` as the launch prefix
sed -e "s/192\.0\.2\.10/$net.1/; s/192\.0\.2\.11/$net.2/; s/192\.0\.2\.12/$net.3/" \
    -e "s|launch: \[ssh, -o, BatchMode=yes, deploy@edge\([12]\)\.example\]|launch: [ip, netns, exec, $tag-\1]|" \
    -e "s|python: /opt/app/venv/bin/python|python: $python|" \
    examples/hosts/pipeline.yaml > "$file"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$python" -m topo up "$file"
