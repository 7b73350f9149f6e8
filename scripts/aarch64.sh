# Sourced (not run) by scripts/test-aarch64.sh and `scripts/dist.sh --target
# aarch64`, from the repository root, after they define `die`: the one home
# of the AArch64 cross-build settings and of ONNX Runtime for AArch64.

AARCH64_TRIPLE=aarch64-unknown-linux-gnu
# The AArch64 C library of Debian's libc6-dev-arm64-cross (qemu-user's prefix).
AARCH64_SYSROOT=/usr/aarch64-linux-gnu

# Checks the cross toolchain and exports cargo's settings for it.
aarch64_cross_env() {
  command -v aarch64-linux-gnu-gcc >/dev/null \
    || die "aarch64-linux-gnu-gcc not found (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
  [ -e "$AARCH64_SYSROOT/lib/libc.so.6" ] \
    || die "no AArch64 C library in $AARCH64_SYSROOT (Debian: apt-get install libc6-dev-arm64-cross)"
  rustup target list --installed 2>/dev/null | grep -qx "$AARCH64_TRIPLE" \
    || die "the Rust target $AARCH64_TRIPLE is missing (rustup target add $AARCH64_TRIPLE)"
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
}

# ONNX Runtime for AArch64 in a venv-shaped folder: the onnxruntime wheel of
# requirements.txt's version built for manylinux AArch64, unpacked once, with
#   DIR/onnxruntime -> the wheel's onnxruntime/capi (libonnxruntime.so.X.Y.Z),
#                      its LICENSE and ThirdPartyNotices.txt one folder up;
#   DIR/bin, lib, include, pyvenv.cfg -> .venv's (so $TCANET_VENV/bin/python
#                      is .venv's Python, which the tests' checks run).
# Prints DIR's absolute path (target/aarch64-unknown-linux-gnu-venv).
aarch64_ort_venv() {
  local dir=${CARGO_TARGET_DIR:-target}/$AARCH64_TRIPLE-venv version venv part
  version=$(sed -n 's/^onnxruntime==//p' requirements.txt)
  [ -n "$version" ] || die "requirements.txt pins no onnxruntime version"
  [ -x .venv/bin/python ] || die "no .venv: run 'make setup' first"
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  if [ ! -e "$dir/onnxruntime/libonnxruntime.so.$version" ]; then
    echo "fetching the AArch64 onnxruntime==$version wheel" >&2
    rm -rf "$dir/wheel" "$dir/package" "$dir/onnxruntime"
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux_2_28_aarch64 --python-version 3.11 -d "$dir/wheel" "onnxruntime==$version" >&2 \
      || die "pip could not download the AArch64 onnxruntime==$version wheel"
    .venv/bin/python - "$dir" <<'PY'
import glob, sys, zipfile
out = sys.argv[1]
wanted = ("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt")
with zipfile.ZipFile(glob.glob(f"{out}/wheel/*.whl")[0]) as wheel:
    for name in wheel.namelist():
        if name in wanted or name.startswith("onnxruntime/capi/libonnxruntime"):
            wheel.extract(name, f"{out}/package")
PY
    rm -rf "$dir/wheel"
    ln -sfn package/onnxruntime/capi "$dir/onnxruntime"
    [ -e "$dir/onnxruntime/libonnxruntime.so.$version" ] || die "the wheel has no libonnxruntime.so.$version"
  fi
  venv=$(realpath .venv)
  for part in bin lib include pyvenv.cfg; do
    ln -sfn "$venv/$part" "$dir/$part"
  done
  echo "$dir"
}
