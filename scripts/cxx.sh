#!/bin/sh
# The C++ compiler of the workspace's C++ code (torch-sys compiles its libtorch
# wrapper with it): the system compiler, with the repository's absolute path
# removed from the file names it embeds (libtorch's assertion messages use
# __FILE__; debug information), so that binaries carry no path of the machine
# they were built on. .cargo/config.toml points CXX here; a CXX set in the
# environment wins. TCANET_CXX names another compiler (default: c++).
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
real=$(CDPATH='' cd -- "$root" && pwd -P)
exec "${TCANET_CXX:-c++}" "-ffile-prefix-map=$root/=" "-ffile-prefix-map=$real/=" "$@"
