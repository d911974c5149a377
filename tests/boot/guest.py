#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Build the Linux guests the demo and the boot matrix run, from Debian's
packages only, and cache them outside the repository keyed by their inputs.

  guest.py debian-kernel ARCH          Debian bookworm's packaged kernel
                                       (linux-image-ARCH), unmodified:
                                       prints the cache directory holding
                                       vmlinuz and lib/modules/
  guest.py aware-kernels               the fork's arm64 guests, built from
                                       Debian's linux-source-6.1 with
                                       allnoconfig plus linux/aware.config
                                       and linux/aware-feature.config,
                                       cross-compiled with Debian's
                                       gcc-aarch64-linux-gnu: prints the
                                       cache directory holding Image.pool
                                       (pool-aware, unpatched) and
                                       Image.feature (plus the series
                                       linux/NNNN-*.patch and
                                       linux/series.config: bit 27, the
                                       PCI window, UEFI/ACPI boot)
  guest.py x86_64-kernel               the fork's x86_64 guest, Debian's
                                       linux-source-6.1 with allnoconfig,
                                       linux/x86_64.config and the series,
                                       built with Debian's gcc: prints the
                                       cache directory holding bzImage
  guest.py kernels                     all of the above: every kernel the
                                       boot matrix, the demo and the install
                                       tests boot ("make check" runs it
                                       before its timed tests)
  guest.py initramfs ARCH INIT OUT [--kernel-dir DIR --modules M1,M2]
                                       a cpio.gz of Debian's busybox-static
                                       for ARCH, INIT as /init, and the named
                                       modules with their dependencies

ARCH is a Debian architecture: amd64 or arm64.  runner.py boots them.
"""

import argparse
import gzip
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import hashlib
import glob

PROG = "guest.py"


def die(msg):
    sys.stderr.write("%s: error: %s\n" % (PROG, msg))
    sys.exit(1)


def note(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))


def cache_dir():
    d = os.environ.get("QEMU_RDMA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "qemu-rdma-fork")
    return os.path.join(d, "guests")


def run(*args, cwd=None):
    r = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die("%s failed:\n%s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def apt_resolve(pkg, arch):
    """The real package a Debian metapackage depends on, and its version."""
    spec = "%s:%s" % (pkg, arch)
    out = run("apt-cache", "depends", spec)
    real = pkg
    for line in out.splitlines():
        m = re.match(r"\s+Depends: (linux-image-[^:\s]+)", line)
        if m:
            real = m.group(1)
            break
    pol = run("apt-cache", "policy", "%s:%s" % (real, arch))
    m = re.search(r"Candidate: (\S+)", pol)
    if not m or m.group(1) == "(none)":
        die("apt knows no %s for %s; run scripts/install-deps (it adds the "
            "%s architecture)" % (real, arch, arch))
    return real, m.group(1)


def apt_download(pkg, arch, version, dest):
    """Download one .deb into dest and return its path."""
    os.makedirs(dest, exist_ok=True)
    run("apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
        "%s:%s=%s" % (pkg, arch, version), cwd=dest)
    for n in os.listdir(dest):
        if n.startswith(pkg + "_") and n.endswith("_%s.deb" % arch):
            return os.path.join(dest, n)
    die("apt-get download %s:%s left no .deb in %s" % (pkg, arch, dest))


def deb_file(pkg, arch, version, member, dest):
    """Unpack one file (@member, a path inside the package) of a Debian
    package into @dest in the cache, unless it is there already."""
    if os.path.exists(dest):
        return
    note("fetching %s %s for %s" % (pkg, version, arch))
    os.makedirs(cache_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        deb = apt_download(pkg, arch, version, tmp)
        x = os.path.join(tmp, "x")
        run("dpkg-deb", "-x", deb, x)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(os.path.join(x, member), dest + ".tmp")
        os.rename(dest + ".tmp", dest)


def debian_kernel(arch):
    real, version = apt_resolve("linux-image-" + arch, arch)
    out = os.path.join(cache_dir(), "%s_%s" % (real, version))
    if os.path.exists(os.path.join(out, ".done")):
        return out
    note("fetching %s %s" % (real, version))
    with tempfile.TemporaryDirectory(dir=cache_dir() if os.path.isdir(
            cache_dir()) else None) as tmp:
        deb = apt_download(real, arch, version, tmp)
        x = os.path.join(tmp, "x")
        run("dpkg-deb", "-x", deb, x)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.makedirs(out)
        boot = os.path.join(x, "boot")
        for n in os.listdir(boot):
            if n.startswith("vmlinuz-"):
                shutil.copy(os.path.join(boot, n),
                            os.path.join(out, "vmlinuz"))
            if n.startswith("config-"):
                shutil.copy(os.path.join(boot, n), os.path.join(out, "config"))
        mods = os.path.join(x, "lib", "modules")
        shutil.copytree(mods, os.path.join(out, "lib", "modules"),
                        symlinks=True)
    open(os.path.join(out, ".done"), "w").close()
    return out


def storage_daemon():
    """Debian's qemu-storage-daemon, the vhost-user-blk backend of the
    vhost-user cases: from qemu-utils 10.0 in bookworm-backports, unpacked
    into the cache, not installed (its libraries come from
    scripts/install-deps).  Returns the binary's path."""
    version = None
    for line in run("apt-cache", "madison", "qemu-utils").splitlines():
        parts = [p.strip() for p in line.split("|")]
        if (len(parts) == 3 and parts[1].startswith("1:10.0") and
                "-backports" in parts[2] and parts[2].endswith("Packages")):
            version = parts[1]
            break
    if not version:
        die("apt knows no qemu-utils 10.0 from bookworm-backports; run "
            "scripts/install-deps (it enables bookworm-backports)")
    arch = run("dpkg", "--print-architecture").strip()
    out = os.path.join(cache_dir(), "qemu-utils_%s" % version.replace(":",
                                                                    "_"))
    binary = os.path.join(out, "qemu-storage-daemon")
    deb_file("qemu-utils", arch, version, "usr/bin/qemu-storage-daemon",
             binary)
    r = subprocess.run([binary, "--version"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die("%s does not run (%s); run scripts/install-deps (it installs "
            "its libraries)" % (binary, r.stderr.strip()))
    return binary


HERE = os.path.dirname(os.path.abspath(__file__))
LINUX_TARBALL = "/usr/src/linux-source-6.1.tar.xz"
CROSS = "aarch64-linux-gnu-"


def pkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
    if r.returncode != 0 or not r.stdout:
        die("%s is not installed; run scripts/install-deps" % pkg)
    return r.stdout


def kernel_build_inputs(arch, builds):
    """What a set of guest kernel builds depends on, as text for the cache
    key: the linux-source-6.1 and toolchain package versions, the
    architecture, and for each image its config fragments and whether it
    carries the series, with the content of every fragment and the diff
    of every patch."""
    lines = ["arch=%s" % arch]
    for pkg in ("linux-source-6.1",) + LINUX_ARCHES[arch]["packages"]:
        lines.append("%s=%s" % (pkg, pkg_version(pkg)))
    files = []
    for image, fragments, patched in builds:
        lines.append("image %s: %s%s" % (image, " ".join(
            os.path.basename(f) for f in fragments),
            " + series" if patched else ""))
        files += fragments
    if any(patched for _, _, patched in builds):
        files += series_patches()
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        if f.endswith(".patch"):
            # a patch's message does not change the kernel: only its diff
            # is in the key, so rewording a commit rebuilds nothing
            start = data.find(b"\ndiff --git ")
            data = data[start:] if start >= 0 else data
        lines.append("%s sha256=%s" % (os.path.basename(f),
                                       hashlib.sha256(data).hexdigest()))
    return "\n".join(lines) + "\n"


def series_patches():
    """The guest kernel series, in order (linux/NNNN-*.patch)."""
    return sorted(glob.glob(os.path.join(HERE, "linux", "[0-9]" * 4 +
                                         "-*.patch")))


# How to build Linux 6.1 for each guest architecture with Debian's
# compilers: make's arguments, the image, and the packages the build uses
# (part of the cache key).
LINUX_ARCHES = {
    "arm64": {"make": ["ARCH=arm64", "CROSS_COMPILE=" + CROSS],
              "image": "arch/arm64/boot/Image", "target": "Image",
              "packages": ("gcc-aarch64-linux-gnu",
                           "binutils-aarch64-linux-gnu")},
    "x86_64": {"make": ["ARCH=x86_64"],
               "image": "arch/x86/boot/bzImage", "target": "bzImage",
               "packages": ("gcc", "binutils", "libelf-dev")},
}


def linux_kernels(name, arch, builds):
    """Build (or find in the cache) Linux 6.1 guest kernels for @arch from
    Debian's linux-source-6.1 and compilers.  @builds lists (image name,
    config fragments, patched): each image is allnoconfig plus its
    fragments, built in turn in one tree; the series (linux/NNNN-*.patch)
    is applied before the first patched image, so unpatched images come
    first.  Returns the cache directory, keyed by kernel_build_inputs(),
    which holds the images, their configs, the inputs and the build
    times."""
    spec = LINUX_ARCHES[arch]
    inputs = kernel_build_inputs(arch, builds)
    key = hashlib.sha256(inputs.encode()).hexdigest()[:16]
    out = os.path.join(cache_dir(), "linux-6.1-%s-%s" % (name, key))
    if os.path.exists(os.path.join(out, ".done")):
        return out
    os.makedirs(cache_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        note("unpacking %s" % LINUX_TARBALL)
        run("tar", "-C", tmp, "-xf", LINUX_TARBALL)
        src = os.path.join(tmp, "linux-source-6.1")
        obj = os.path.join(tmp, "obj")
        stage = os.path.join(tmp, "out")
        os.makedirs(stage)
        make = ["make", "-s", "-C", src, "O=" + obj] + spec["make"] + [
            "-j%d" % (os.cpu_count() or 2)]
        patched = False
        times = []
        for image, fragments, want_patched in builds:
            if want_patched and not patched:
                for p in series_patches():
                    note("applying %s" % os.path.basename(p))
                    run("patch", "-s", "-p1", "-F0", "-d", src, "-i", p)
                patched = True
            elif patched and not want_patched:
                die("%s: unpatched images must come first" % image)
            run(*make, "allnoconfig")
            run(os.path.join(src, "scripts", "kconfig", "merge_config.sh"),
                "-m", "-O", obj, os.path.join(obj, ".config"), *fragments,
                cwd=src)
            run(*make, "olddefconfig")
            with open(os.path.join(obj, ".config")) as fh:
                have = set(line.strip() for line in fh)
            want = []
            for f in fragments:
                with open(f) as fh:
                    want += [line.strip() for line in fh
                             if line.startswith("CONFIG_") and
                             line.strip().endswith("=y")]
            missing = [w for w in want if w not in have]
            if missing:
                die("the %s config lacks %s after olddefconfig; fix %s"
                    % (image, ", ".join(missing),
                       " ".join(os.path.basename(f) for f in fragments)))
            note("building %s %s (on 2 cores: 5 to 10 minutes idle, 25 to "
                 "40 under load)" % (arch, image))
            t = time.time()
            run(*make, spec["target"])
            times.append("%s %.0f s" % (image, time.time() - t))
            note("built %s in %s" % (image, times[-1].split(" ", 1)[1]))
            shutil.copy(os.path.join(obj, spec["image"]),
                        os.path.join(stage, image))
            shutil.copy(os.path.join(obj, ".config"),
                        os.path.join(stage, image + ".config"))
        with open(os.path.join(stage, "inputs"), "w") as fh:
            fh.write(inputs)
        with open(os.path.join(stage, "build-times"), "w") as fh:
            fh.write("\n".join(times) + "\n")
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(stage, out)
    open(os.path.join(out, ".done"), "w").close()
    return out


def arm64_fragments():
    """The config fragments of the arm64 images: (Image.pool's,
    Image.feature's).  Both take linux/aware.config and
    linux/aware-feature.config, so that Image.feature, built second in the
    same tree, recompiles only what the series touches; Image.feature adds
    linux/series.config, the series' own option."""
    lx = os.path.join(HERE, "linux")
    pool = [os.path.join(lx, "aware.config"),
            os.path.join(lx, "aware-feature.config")]
    return pool, pool + [os.path.join(lx, "series.config")]


def aware_kernels():
    """The arm64 guests: Image.pool, pool-aware and unpatched;
    Image.feature, the same configuration with the series (bit 27, the
    PCI window, UEFI and ACPI boot) and its option (arm64_fragments()).
    Returns the cache directory holding both."""
    pool, feature = arm64_fragments()
    return linux_kernels("aware", "arm64", [
        ("Image.pool", pool, False),
        ("Image.feature", feature, True)])


def x86_64_kernel():
    """The x86_64 guest: allnoconfig plus linux/x86_64.config with the
    series, booted with -kernel on q35.  Returns the cache directory
    holding bzImage."""
    return linux_kernels("x86_64", "x86_64", [
        ("bzImage", [os.path.join(HERE, "linux", "x86_64.config")], True)])


def busybox(arch):
    _, version = apt_resolve("busybox-static", arch)
    out = os.path.join(cache_dir(), "busybox-static_%s_%s" % (
        version.replace(":", "%3a"), arch))
    binary = os.path.join(out, "busybox")
    deb_file("busybox-static", arch, version, "bin/busybox", binary)
    return binary


def module_closure(kdir, names):
    """Module files for names and their dependencies, dependencies first."""
    index = {}
    for root, _, files in os.walk(os.path.join(kdir, "lib", "modules")):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(root, f)
    order = []

    def visit(name):
        key = name.replace("-", "_")
        if key in [k for k, _ in order]:
            return
        if key not in index:
            die("module %s is not in %s (built in, or misspelt?)" % (name, kdir))
        with open(index[key], "rb") as fh:
            m = re.search(rb"depends=([\w,-]*)\x00", fh.read())
        for dep in (m.group(1).decode().split(",") if m else []):
            if dep:
                visit(dep)
        order.append((key, index[key]))

    for n in names:
        visit(n)
    return order


class Cpio:
    """A minimal writer of the "newc" cpio format the kernel unpacks."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", nlink=1):
        name_b = name.encode() + b"\0"
        hdr = "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x" % (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0,
            len(name_b), 0)
        self.ino += 1
        self.buf.write(hdr.encode() + name_b)
        self.buf.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * ((4 - len(data) % 4) % 4))

    def dir(self, name):
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def initramfs(arch, init, out, kdir=None, modules=(), extra=(), files=None):
    """Write to out a gzipped cpio of Debian's busybox-static for arch, init
    as /init, the named modules of the kernel in kdir with their
    dependencies (listed in /lib/modules/order), extra (host file, path)
    pairs made executable, and files, {path: bytes}."""
    cp = Cpio()
    made = set()

    def mkdir(d):
        if d not in made:
            cp.dir(d)
            made.add(d)

    def parents(path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            mkdir("/".join(parts[:i]))

    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "mnt", "lib",
              "lib/modules", "usr", "usr/bin", "usr/sbin", "etc"):
        mkdir(d)
    with open(busybox(arch), "rb") as fh:
        cp.file("bin/busybox", fh.read(), 0o755)
    cp.symlink("bin/sh", "busybox")
    with open(init, "rb") as fh:
        cp.file("init", fh.read(), 0o755)
    names = []
    if modules:
        for key, path in module_closure(kdir, modules):
            with open(path, "rb") as fh:
                cp.file("lib/modules/%s.ko" % key, fh.read())
            names.append(key)
    # /lib/modules/order: the modules to insmod, dependencies first
    cp.file("lib/modules/order", ("\n".join(names) + "\n").encode())
    for src, dst in extra:
        parents(dst)
        with open(src, "rb") as fh:
            cp.file(dst, fh.read(), 0o755)
    for dst, data in sorted((files or {}).items()):
        parents(dst)
        cp.file(dst, data)
    data = gzip.compress(cp.finish(), compresslevel=6, mtime=0)
    with open(out + ".tmp", "wb") as fh:
        fh.write(data)
    os.rename(out + ".tmp", out)


def main():
    ap = argparse.ArgumentParser(prog=PROG)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("debian-kernel")
    k.add_argument("arch", choices=["amd64", "arm64"])
    sub.add_parser("aware-kernels")
    sub.add_parser("x86_64-kernel")
    sub.add_parser("kernels")
    i = sub.add_parser("initramfs")
    i.add_argument("arch", choices=["amd64", "arm64"])
    i.add_argument("init")
    i.add_argument("out")
    i.add_argument("--kernel-dir")
    i.add_argument("--modules", default="")
    i.add_argument("--extra", action="append", default=[],
                   help="SRC:DST, a further executable for the initramfs")
    args = ap.parse_args()
    if args.cmd == "debian-kernel":
        print(debian_kernel(args.arch))
    elif args.cmd == "aware-kernels":
        print(aware_kernels())
    elif args.cmd == "x86_64-kernel":
        print(x86_64_kernel())
    elif args.cmd == "kernels":
        for arch in ("amd64", "arm64"):
            print(debian_kernel(arch))
        print(aware_kernels())
        print(x86_64_kernel())
    elif args.cmd == "initramfs":
        mods = [m for m in args.modules.split(",") if m]
        if mods and not args.kernel_dir:
            die("--modules needs --kernel-dir")
        initramfs(args.arch, args.init, args.out, args.kernel_dir, mods,
                  [tuple(e.split(":", 1)) for e in args.extra])
    return 0


if __name__ == "__main__":
    sys.exit(main())
