# SPDX-License-Identifier: GPL-2.0-or-later
"""The guests that test-install and test-libvirt boot, and how their
outcome is judged.

They are boot-matrix guests (tests/boot: the same kernels, busybox
initramfs and /init), with one difference: the guest does not power off
after its RESULT line but waits (init-hold), so that the host reads the
device's restricted DMA status, and the pool's memory, at leisure while
the driver still holds the device, then stops the guest itself.

Two window kinds:

  pool  aarch64 virt, the fork's feature-aware kernel, virtio-blk on
        virtio-mmio with a 16 MiB restricted-dma-pool (the boot matrix's
        aarch64/mmio/feature-aware/refuse);
  bar   x86_64 q35, virtio-blk-pci with an 8 MiB BAR window, driven by
        the userspace reference driver under Debian's kernel (the boot
        matrix's x86_64/pci-bar/reference-driver/refuse).  With
        bar_kernel (--bar-kernel PATH, or RDMA_BAR_KERNEL), a guest kernel
        whose own virtio-pci driver uses the window (the issue "Linux
        drives the PCI window") runs instead, with the boot matrix's blk
        mode: it reads and writes the disk through its own driver.
"""

import importlib.machinery
import importlib.util
import json
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "boot"))
import guest  # noqa: E402

MAGIC = b"RDMA-BOOT-MATRIX"
WRITTEN = b"GUEST-WROTE-THIS"
RAM_MB = 512
POOL_SIZE = 16 * 1024 * 1024
# arm virt places the pool at the top of RAM
POOL_BASE = 0x40000000 + RAM_MB * 1024 * 1024 - POOL_SIZE
BAR_SIZE = 8 * 1024 * 1024
INSTALL = os.path.join(TOP, "scripts", "install")


def install_module():
    """scripts/install as a module (its Build and manifest helpers)."""
    loader = importlib.machinery.SourceFileLoader("rdma_install", INSTALL)
    spec = importlib.util.spec_from_loader("rdma_install", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Case:
    def __init__(self, name, kind, arch, mode, kernel_kind):
        self.name = name
        self.kind = kind            # pool | bar
        self.arch = arch            # aarch64 | x86_64
        self.mode = mode            # blk | ref (init-case's rdma.mode)
        self.kernel_kind = kernel_kind  # feature | debian | PATH
        self.kernel = None
        self.initrd = None

    @property
    def console(self):
        return "ttyAMA0" if self.arch == "aarch64" else "ttyS0"

    @property
    def cmdline(self):
        return "console=%s panic=-1 rdma.mode=%s" % (self.console, self.mode)

    def qom_path(self, dev_id):
        """The QOM path of the VirtIODevice of the -device with id dev_id."""
        return "/machine/peripheral/%s%s" % (
            dev_id, "/virtio-backend" if self.kind == "bar" else "")


def cases(bar_kernel=None):
    """bar_kernel: None (the reference driver), "x86_64" (the fork's
    x86_64 guest kernel from tests/boot/guest.py, built and cached on
    first use) or the path of an x86_64 kernel image whose virtio-pci
    driver uses the window."""
    bar_kernel = bar_kernel or os.environ.get("RDMA_BAR_KERNEL") or None
    out = [Case("aarch64/mmio-pool/feature-aware", "pool", "aarch64", "blk",
                "feature")]
    if bar_kernel:
        out.append(Case("x86_64/pci-bar/kernel-driver", "bar", "x86_64",
                        "blk", bar_kernel if bar_kernel == "x86_64" else
                        os.path.abspath(bar_kernel)))
    else:
        out.append(Case("x86_64/pci-bar/reference-driver", "bar", "x86_64",
                        "ref", "debian"))
    return out


def prepare(case, work, guest_tools):
    """Find (or build, through the guest cache) the kernel, and write the
    initramfs into work.  guest_tools: the directory holding
    rdma-blk-ref-ARCH (the installed lib/qemu-rdma-fork/guest)."""
    debarch = "arm64" if case.arch == "aarch64" else "amd64"
    kdir = None
    if case.kernel_kind == "feature":
        case.kernel = os.path.join(guest.aware_kernels(), "Image.feature")
    elif case.kernel_kind == "x86_64":
        if not hasattr(guest, "x86_64_kernel"):
            guest.die("tests/boot/guest.py cannot build the x86_64 kernel "
                      "guest yet; give --bar-kernel PATH")
        case.kernel = os.path.join(guest.x86_64_kernel(), "bzImage")
    elif case.kernel_kind == "debian":
        kdir = guest.debian_kernel(debarch)
        case.kernel = os.path.join(kdir, "vmlinuz")
    else:
        case.kernel = case.kernel_kind
    extra = [(os.path.join(TOP, "tests", "boot", "init-case"), "init-case")]
    if case.mode == "ref":
        extra.append((os.path.join(guest_tools, "rdma-blk-ref-" + case.arch),
                      "bin/rdma-blk-ref"))
    # Debian's kernel has virtio as modules; the reference driver needs
    # the kernel's own driver absent, the aware kernels have it built in
    mods = []
    if kdir and case.mode != "ref":
        mods = ["virtio_blk", "virtio_pci"] + (
            ["virtio_mmio"] if case.arch == "aarch64" else [])
    case.initrd = os.path.join(work, case.name.replace("/", "_") + ".initrd")
    guest.initramfs(debarch, os.path.join(HERE, "init-hold"), case.initrd,
                    kdir, mods, extra)


def make_disk(path):
    with open(path, "wb") as f:
        f.write(MAGIC.ljust(512, b"\0"))
        f.truncate(8 * 1024 * 1024)


def disk_written(path):
    with open(path, "rb") as f:
        f.seek(64 * 512)
        return f.read(16) == WRITTEN


def result_line(console):
    """The guest's RESULT line (without "RESULT "), or None.  Only a whole
    line counts: the serial console is written as the guest prints, and a
    slow (sanitized) QEMU can be read halfway through the line."""
    if not os.path.exists(console):
        return None
    with open(console, errors="replace") as f:
        for line in f:
            if "RESULT " in line and line.endswith("\n"):
                return line[line.index("RESULT ") + 7:].strip()
    return None


def judge(case, result, status, written, bounced):
    """Problems with one run: the guest's result fields, QEMU's
    x-query-virtio-status return value, whether the guest's write reached
    the disk, and whether the disk's data were found in the pool (None:
    not looked)."""
    fields = dict(kv.split("=", 1) for kv in (result or "").split()
                  if "=" in kv)
    rd = status.get("restricted-dma", {})
    problems = []
    if fields.get("io") != "ok":
        problems.append("guest: %s" % (result or "no RESULT line"))
    if case.mode == "blk" and not written:
        problems.append("the guest's write is not on the disk")
    if rd.get("kind") != case.kind:
        problems.append("window kind %s, not %s" % (rd.get("kind"),
                                                    case.kind))
    if not rd.get("driver-accepted"):
        problems.append("QEMU did not see the driver accept bit 27")
    if rd.get("violations") != 0 or status.get("broken"):
        problems.append("violations %s, broken %s" % (rd.get("violations"),
                                                      status.get("broken")))
    if case.kind == "pool":
        if fields.get("pool") != "1":
            problems.append("the guest did not assign the pool")
        if rd.get("window-size") != POOL_SIZE:
            problems.append("window size %s" % rd.get("window-size"))
        if bounced is False:
            problems.append("the disk's data were not found in the pool")
    else:
        if rd.get("window-size") != BAR_SIZE or not rd.get("window-open"):
            problems.append("window %s bytes, open %s"
                            % (rd.get("window-size"), rd.get("window-open")))
    if case.mode == "blk" and fields.get("bit27") != "1":
        problems.append("the guest did not negotiate bit 27")
    return problems


def summary(status):
    rd = status.get("restricted-dma", {})
    keys = ("kind", "window-address", "window-size", "window-open",
            "policy", "driver-accepted", "refusals", "violations",
            "backend-errors")
    out = []
    for k in keys:
        if k in rd:
            v = rd[k]
            if k == "window-address":
                v = "0x%x" % v
            out.append("%s=%s" % (k, str(v).lower() if isinstance(v, bool)
                                  else v))
    return " ".join(out)


class QMP:
    """A minimal QMP client on a unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.f = self.sock.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                return {"error": {"desc": "QEMU closed the monitor"}}
            r = json.loads(line)
            if "return" in r or "error" in r:
                return r

    def close(self):
        self.sock.close()


class Tap:
    """TAP output for meson: one line per check."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.start = time.time()

    def ok(self, cond, what, detail=""):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s%s" % ("ok" if cond else "not ok", self.n, what,
                                (" # " + detail) if detail and cond else ""),
              flush=True)
        if detail and not cond:
            for line in str(detail).splitlines():
                print("# " + line, flush=True)
        return cond

    def note(self, msg):
        for line in str(msg).splitlines():
            print("# " + line, flush=True)

    def done(self):
        self.note("%s: %.0f s" % (os.path.basename(sys.argv[0]),
                                  time.time() - self.start))
        print("1..%d" % self.n, flush=True)
        print("# %d passed, %d failed" % (self.n - self.failed, self.failed),
              flush=True)
        return 1 if self.failed else 0
