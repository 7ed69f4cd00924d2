#!/usr/bin/env bash
# Run an rpi-arm64 bundle on an emulated arm64 Debian (what Raspberry Pi OS 64-bit is built on) and
# compare its top-1 predictions with the same bundle on this x86-64 machine.
#
#   sudo bash benchmarks/arm64_emulation.sh BUNDLE.tar.gz [WORKDIR]
#
# Needs root (debootstrap, chroot, binfmt_misc), Debian's packages and PyPI. Builds an arm64
# bookworm root with debootstrap once (WORKDIR/rootfs, about 10 minutes and 400 MB), registers
# qemu-user-static for aarch64 binaries, then inside the root, under emulation:
#   python3 -m venv, pip install -r requirements.txt (aarch64 wheels: numpy, ai-edge-litert),
#   edgedl-run on the bundle's samples and on its evaluation images, and edgedl-run bench.
# Prints both sets of predictions and exits non-zero if any top-1 differs (classifiers).
# Latencies measured under emulation say nothing about a real Pi; accuracy and predictions do.
set -euo pipefail

bundle=$(realpath "${1:?usage: arm64_emulation.sh BUNDLE.tar.gz [WORKDIR]}")
work=$(realpath -m "${2:-${TMPDIR:-/tmp}/edgedl-arm64}")
root="$work/rootfs"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")/.." && pwd)
host_python=${PYTHON:-$here/.venv/bin/python}

[ "$(id -u)" = 0 ] || { echo "arm64_emulation.sh: run as root (debootstrap and chroot need it)" >&2; exit 2; }
[ -f "$bundle" ] || { echo "arm64_emulation.sh: no such bundle: $bundle" >&2; exit 2; }
mkdir -p "$work"

if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user-static debootstrap >/dev/null
fi
# Let the kernel hand aarch64 binaries to qemu (F: the interpreter is opened now, so it works inside chroot).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
fi

if [ ! -x "$root/usr/bin/python3" ]; then
  echo "== debootstrap: arm64 Debian bookworm into $root"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
fi

cleanup() { for m in proc dev; do umount "$root/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
# No /sys: with it, XNNPACK's CPU probing crashes under qemu-user; without it, it prints
# "Error in cpuinfo: failed to parse the list of possible processors" and runs on.
mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This machine's CA bundle, so that pip inside the root trusts what pip here trusts (a TLS-inspecting proxy too).
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/host-ca-bundle.crt"

name=$(basename "$bundle" .tar.gz)
rm -rf "$root/root/$name" "$work/x86"
cp "$bundle" "$root/root/bundle.tar.gz"
echo "== arm64 (emulated): $(chroot "$root" uname -m), $(chroot "$root" python3 --version)"
# A clean environment: none of this machine's pip settings (find-links, constraints) leak into the root.
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt /bin/bash -euo pipefail -c "
  cd /root && tar xzf bundle.tar.gz   # bookworm's Python 3.11.2 predates tarfile's data filter; GNU tar keeps to .
  cd $name
  python3 -m venv .venv && . .venv/bin/activate
  pip install --quiet --disable-pip-version-check -r requirements.txt
  model=\$(python3 -c 'import json; print(json.load(open(\"manifest.json\"))[\"artifacts\"][0][\"path\"])')
  edgedl-run \"\$model\" samples/ --json > predictions.json
  python3 -c 'import numpy as np; np.save(\"eval_x.npy\", np.load(\"data/eval.npz\")[\"x\"])'
  edgedl-run \"\$model\" eval_x.npy --json > eval_predictions.json
  edgedl-run bench \"\$model\" --runs 20 --warmup 2 --json device.json
  python3 -c 'import platform, numpy; from importlib.metadata import version; print(\"arm64 side:\", platform.machine(), \"numpy\", numpy.__version__, \"ai-edge-litert\", version(\"ai-edge-litert\"))'
"

echo "== x86-64 (this machine): the same bundle"
mkdir -p "$work/x86"
"$host_python" -m runtime.cli unpack "$bundle" --to "$work/x86" >/dev/null
model=$("$host_python" -c "import json,sys; print(json.load(open(sys.argv[1]))['artifacts'][0]['path'])" "$work/x86/$name/manifest.json")
(cd "$work/x86/$name" && "$host_python" -m runtime.cli "$model" samples/ --json > predictions.json &&
  "$host_python" -c 'import numpy as np; np.save("eval_x.npy", np.load("data/eval.npz")["x"])' &&
  "$host_python" -m runtime.cli "$model" eval_x.npy --json > eval_predictions.json)

"$host_python" - "$root/root/$name" "$work/x86/$name" <<'EOF'
import json, sys
from pathlib import Path

arm, x86 = (json.loads((Path(p) / "predictions.json").read_text())["results"] for p in sys.argv[1:3])
bench = json.loads((Path(sys.argv[1]) / "device.json").read_text())
rec = bench["variants"][0]
print(f"{'input':<28} {'arm64':>6} {'x86-64':>7}")
same = 0
for a, b in zip(arm, x86):
    same += a["label"] == b["label"]
    print(f"{Path(a['input']).name:<28} {a['label']:>6} {b['label']:>7}")
print(f"top-1 identical on {same} of {len(arm)} samples")
arm_all, x86_all = (json.loads((Path(p) / "eval_predictions.json").read_text())["results"] for p in sys.argv[1:3])
same_all = sum(a["label"] == b["label"] for a, b in zip(arm_all, x86_all))
print(f"top-1 identical on {same_all} of {len(arm_all)} evaluation images")
print(f"arm64 bench: {rec['name']} accuracy {rec['metrics'].get('accuracy', float('nan')):.4f} "
      f"(delta vs host original {rec['metric_delta']:+.2f}), machine {bench['machine']['arch']}, "
      f"{bench['machine']['versions']}")
sys.exit(0 if same == len(arm) == len(x86) and same_all == len(arm_all) == len(x86_all) else 1)
EOF
