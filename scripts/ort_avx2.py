"""Writes a copy of ONNX Runtime's CPU library whose MLAS kernels stop at
AVX2/FMA3 on an AVX-512 host, to measure the AVX2 path on one machine.

ONNX Runtime has no switch for this: MLAS picks its kernels once, in its
platform constructor, from CPUID (the AVX512F bit) and XGETBV, and there is
no environment variable or session option to cap the ISA (checked in the
1.31 sources). The constructor's test for AVX-512 ends in
`not %rax; test $0xe0,%al; je <AVX-512 kernel setup>` right after a
`test $0x10000,<cpuid leaf 7 ebx>`; this script turns each such `je` into a
6-byte no-op, so the setup for AVX2 stays in place. It refuses unless it
finds the pattern (1.31.1 has it 4 times: MLAS is built into several
objects). Verify the result with an instruction sample (the bench script
counts zmm vs ymm instructions with `perf` when available).

Usage: python scripts/ort_avx2.py SRC_LIBONNXRUNTIME DST
"""
import sys

AVX512F_TESTS = (bytes.fromhex("f7c700000100"), bytes.fromhex("41f7c200000100"))  # test $0x10000,%edi / %r10d
TAIL = bytes.fromhex("48f7d0a8e00f84")  # not %rax; test $0xe0,%al; je rel32
NOP6 = bytes.fromhex("660f1f440000")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    data = bytearray(open(src, "rb").read())
    sites = []
    i = data.find(TAIL)
    while i >= 0:
        if any(p in data[max(0, i - 16):i] for p in AVX512F_TESTS):
            sites.append(i + 5)
        i = data.find(TAIL, i + 1)
    if not sites:
        sys.exit(f"{src}: no AVX-512 dispatch branch found (another ONNX Runtime build?); nothing written")
    for j in sites:
        data[j:j + 6] = NOP6
    with open(dst, "wb") as f:
        f.write(data)
    print(f"{dst}: {len(sites)} AVX-512 dispatch branches disabled at {', '.join(hex(j) for j in sites)}")


if __name__ == "__main__":
    main()
