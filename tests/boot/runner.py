#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The one guest runner of tests/boot: the boot matrix (run-matrix), the
guest benchmarks (tests/bench/run-bench) and the demo (scripts/demo) start,
watch, question and stop their QEMUs through it.

  build = Build("/path/to/build")      # QEMU binaries, the tree's python/
  guests = Guests(work)                # kernels and initramfses
  kernel, kdir = guests.kernel("aarch64", "feature")
  spec = Spec("aarch64", kernel=kernel,
              initrd=guests.initrd("aarch64", "/path/to/init"),
              append="rdma.mode=blk",
              objects=["restricted-dma-pool,id=p0,size=16M"],
              drives=[drive("d0", raw_disk(work + "/d.img", 8 << 20))],
              devices=["virtio-blk-device,id=dev0,drive=d0,"
                       "restricted-dma-pool=p0"])
  with Vm(build, spec, "case1", work) as vm:
      vm.launch()                      # QEMU runs, QMP is connected
      w = vm.wait(r"RESULT (.*)", timeout=60)   # the guest's serial console
      rd = vm.restricted_dma("dev0")   # x-query-virtio-status' member
      data = vm.pmemsave(vm.pool_base("p0"), 16 << 20)
  # leaving the block quits QEMU (QMP quit, then kill) and closes the log

A Spec is the case's QEMU: architecture, machine, memory, kernel, initrd,
and the -object/-chardev/-drive/-netdev/-device arguments as QEMU's own
strings.  The runner adds what every guest needs (-nodefaults, the serial
console on stdio, QMP on a unix socket, console= and panic=-1 on the kernel
command line) and -global virtio-mmio.force-legacy=false whenever a
restricted device sits on virtio-mmio: a legacy virtio-mmio transport
refuses a restricted device.

QMP goes through the tree's own python/qemu/qmp package (its legacy
synchronous client), found under BUILD/src/python.  Every wait has a
timeout; a QEMU that exits early raises QemuExited with its log.

Several QEMUs (migration) are several Vm objects; a Spec with
incoming="defer" starts one that waits for migrate-incoming.  device_add and
device_del work while the guest runs; Helper starts a backend process (for
example qemu-storage-daemon) beside QEMU.
"""

import logging
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import guest  # noqa: E402

# how each target boots a -kernel guest by default
ARCHES = {
    "aarch64": {"machine": "virt", "cpu": "max", "console": "ttyAMA0",
                "debian": "arm64"},
    "x86_64": {"machine": "q35,sata=off", "cpu": None, "console": "ttyS0",
               "debian": "amd64"},
}


class RunnerError(Exception):
    pass


class QemuExited(RunnerError):
    """QEMU is gone: it refused its command line, crashed or quit."""

    def __init__(self, vm, what):
        self.returncode = vm.proc.returncode if vm.proc else None
        self.log = vm.log()
        tail = "\n  ".join(self.log.strip().splitlines()[-8:])
        super().__init__("%s: QEMU exited (%s) %s%s" % (
            vm.name, self.returncode, what, ":\n  " + tail if tail else ""))


class QmpError(RunnerError):
    """A QMP command returned an error: .cls and .desc as QEMU sent them."""

    def __init__(self, command, cls, desc):
        self.command, self.cls, self.desc = command, cls, desc
        super().__init__("%s: %s: %s" % (command, cls, desc))


class Build:
    """A configured build directory (BUILD_DIR of ./configure, or
    /work/stable-build): its QEMU binaries, the assembled tree's python/
    package, the fork's guest tools.  qemu_dir takes the binaries from
    elsewhere (run-bench --qemu-dir)."""

    def __init__(self, build_dir, qemu_dir=None):
        self.dir = os.path.abspath(build_dir)
        self.qemu_dir = os.path.abspath(qemu_dir or os.path.join(self.dir,
                                                                 "qemu"))
        self.python = os.path.join(self.dir, "src", "python")
        self._qmp = None

    def qemu(self, arch):
        path = os.path.join(self.qemu_dir, "qemu-system-" + arch)
        if not os.path.exists(path):
            raise RunnerError("%s is not built" % path)
        return path

    def tool(self, name):
        """A guest-side tool of the fork's meson project (tests/boot)."""
        return os.path.join(self.dir, "fork", "tests", "boot", name)

    def qmp_class(self):
        if self._qmp is None:
            if not os.path.isdir(os.path.join(self.python, "qemu", "qmp")):
                raise RunnerError("%s has no qemu/qmp package: is %s an "
                                  "assembled build?" % (self.python,
                                                        self.dir))
            if self.python not in sys.path:
                sys.path.insert(0, self.python)
            from qemu.qmp.legacy import QEMUMonitorProtocol
            from qemu.qmp import ExecuteError
            # the client logs a QEMU that goes away; the runner says so
            logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
            self._qmp = (QEMUMonitorProtocol, ExecuteError)
        return self._qmp


def raw_disk(path, size, head=b""):
    """A raw disk image of size bytes starting with head; returns path."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def drive(node_id, path, fmt="raw", **opts):
    """A -drive argument for a backend that a -device takes by id."""
    return ",".join(["file=%s,if=none,id=%s,format=%s" % (path, node_id, fmt)]
                    + ["%s=%s" % kv for kv in opts.items()])


# init-case's iorun: round N of tag TAG writes 1 MiB of "RDMA-IO TAG N"
# lines into slot N % IO_SLOTS of the disk, reads it back and prints
# "IO TAG N SLOT ok|bad SHA12"
IO_ROUND = 1 << 20
IO_SLOTS = 8
IO_LINE = r"IO (\S+) (\d+) (\d+) (ok|bad) ([0-9a-f]+)"


def io_pattern(tag, n):
    """What init-case's iorun writes in round n of tag."""
    line = b"RDMA-IO %s %d\n" % (tag.encode(), n)
    return (line * (IO_ROUND // len(line) + 1))[:IO_ROUND]


def io_disk_check(path, tag, rounds):
    """Check on the host, after the guest is gone, that each slot of the
    disk image holds the pattern of the last round the guest reported
    done in it (rounds: the round numbers reported ok); the slot of the
    round after the last may have been written in part, and is skipped.
    Returns (slots checked, [problems])."""
    if not rounds:
        return 0, ["no round was done"]
    last = max(rounds)
    latest = {}
    for n in rounds:
        s = n % IO_SLOTS
        latest[s] = max(latest.get(s, 0), n)
    latest.pop((last + 1) % IO_SLOTS, None)
    problems = []
    with open(path, "rb") as f:
        for s, n in sorted(latest.items()):
            f.seek(s * IO_ROUND)
            if f.read(IO_ROUND) != io_pattern(tag, n):
                problems.append("slot %d does not hold round %d" % (s, n))
    return len(latest), problems


def driver_of(device):
    return device.split(",", 1)[0]


def restricted_on_mmio(devices):
    """Does one of the -device arguments put a restricted-dma-pool device on
    a virtio-mmio transport (a device that is not virtio-*-pci)?"""
    return any("restricted-dma-pool=" in d and
               not driver_of(d).endswith("-pci") for d in devices)


class Spec:
    """The QEMU of one guest.  QEMU's own argument strings throughout;
    append is added to "console=... panic=-1"."""

    def __init__(self, arch, kernel=None, initrd=None, append="", memory=512,
                 machine=None, cpu="default", accel="tcg", smp=None,
                 objects=(), chardevs=(), drives=(), netdevs=(), devices=(),
                 globals_=(), args=(), memory_backend=None, incoming=None,
                 no_shutdown=True):
        if arch not in ARCHES:
            raise RunnerError("unknown architecture %s" % arch)
        self.arch = arch
        self.kernel, self.initrd, self.append = kernel, initrd, append
        self.memory = memory
        self.machine = machine or ARCHES[arch]["machine"]
        self.cpu = ARCHES[arch]["cpu"] if cpu == "default" else cpu
        self.accel, self.smp = accel, smp
        self.objects, self.chardevs = list(objects), list(chardevs)
        self.drives, self.netdevs = list(drives), list(netdevs)
        self.devices, self.globals = list(devices), list(globals_)
        self.args = list(args)
        self.memory_backend = memory_backend    # -M ...,memory-backend=ID
        self.incoming = incoming                # "defer" or a URI
        self.no_shutdown = no_shutdown

    def command(self, qemu, qmp_path):
        machine = self.machine
        if self.memory_backend:
            machine += ",memory-backend=" + self.memory_backend
        cmd = [qemu, "-accel", self.accel, "-M", machine]
        if self.cpu:
            cmd += ["-cpu", self.cpu]
        cmd += ["-m", str(self.memory)]
        if self.smp:
            cmd += ["-smp", str(self.smp)]
        cmd += ["-nodefaults", "-display", "none", "-no-reboot",
                "-serial", "stdio",
                "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
        if self.no_shutdown:
            cmd.append("-no-shutdown")
        if self.kernel:
            cmd += ["-kernel", self.kernel, "-append",
                    ("console=%s panic=-1 %s" % (ARCHES[self.arch]["console"],
                                                 self.append)).strip()]
        if self.initrd:
            cmd += ["-initrd", self.initrd]
        globals_ = list(self.globals)
        if (restricted_on_mmio(self.devices) and
                "virtio-mmio.force-legacy=false" not in globals_):
            globals_.append("virtio-mmio.force-legacy=false")
        for opt, values in (("-global", globals_), ("-object", self.objects),
                            ("-chardev", self.chardevs),
                            ("-drive", self.drives),
                            ("-netdev", self.netdevs),
                            ("-device", self.devices)):
            for v in values:
                cmd += [opt, v]
        cmd += self.args
        if self.incoming:
            cmd += ["-incoming", self.incoming]
        return cmd


class Wait:
    """How Vm.wait ended: why is "matched", "timeout", "exited" or
    "stopped" (every returned true); match is the re.Match of the console
    line; elapsed in seconds.  True when matched."""

    def __init__(self, timeout):
        self.start = time.time()
        self.deadline = self.start + timeout
        self.match = None
        self.why = None
        self.elapsed = 0.0

    def cap(self, seconds):
        """Wait at most seconds more from now."""
        self.deadline = min(self.deadline, time.time() + seconds)

    def __bool__(self):
        return self.why == "matched"


class Vm:
    """One QEMU: launch(), wait() on its serial console, QMP, shutdown().
    Files in work: NAME.console (the serial console), NAME.qemu.log (QEMU's
    stderr), NAME.qmp (the QMP socket)."""

    def __init__(self, build, spec, name, work):
        self.build, self.spec, self.name, self.work = build, spec, name, work
        self.qmp_path = os.path.join(work, name + ".qmp")
        self.console_path = os.path.join(work, name + ".console")
        self.log_path = os.path.join(work, name + ".qemu.log")
        self.proc = None
        self.mon = None
        self.lines = []         # (host time, line) of the serial console
        self.events = []        # QMP events not yet taken by wait_event
        self.devices = {driver_id(d): driver_of(d) for d in spec.devices
                        if driver_id(d)}
        self._lock = threading.Lock()
        self._reader = None
        self._logf = None

    # --- lifetime ---------------------------------------------------------

    def command(self):
        return self.spec.command(self.build.qemu(self.spec.arch),
                                 self.qmp_path)

    def launch(self, timeout=30):
        """Start QEMU and connect QMP.  Raises QemuExited when QEMU exits
        first (a refused command line), with its log."""
        os.makedirs(self.work, exist_ok=True)
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        cmd = self.command()
        self._logf = open(self.log_path, "w")
        self._logf.write("$ %s\n" % " ".join(cmd))
        self._logf.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=self._logf)
        self.started = time.time()
        self._reader = threading.Thread(target=self._read_console,
                                        daemon=True)
        self._reader.start()
        qmp_class, _ = self.build.qmp_class()
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise QemuExited(self, "before QMP answered")
            if os.path.exists(self.qmp_path):
                mon = qmp_class(self.qmp_path)
                try:
                    mon.connect()
                    mon.settimeout(60)
                    self.mon = mon
                    return self
                except Exception:
                    # QEMU went away after creating its socket
                    if self.proc.poll() is not None:
                        raise QemuExited(self, "before QMP answered")
            if time.time() > deadline:
                self.kill()
                raise RunnerError("%s: QMP did not answer within %d s"
                                  % (self.name, timeout))
            time.sleep(0.05)

    def _read_console(self):
        with open(self.console_path, "w") as con:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                with self._lock:
                    self.lines.append((time.time(), line))
                con.write(line + "\n")
                con.flush()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def shutdown(self, timeout=10):
        """Quit QEMU (QMP quit, then kill) and return its exit status."""
        if self.alive() and self.mon:
            try:
                self.mon.cmd("quit")
            except Exception:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        if self.mon:
            try:
                self.mon.close()
            except Exception:
                pass
            self.mon = None
        if self._reader:
            self._reader.join(5)
        if self._logf:
            self._logf.close()
            self._logf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def log(self):
        """QEMU's stderr so far."""
        if self._logf:
            self._logf.flush()
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # --- the serial console ----------------------------------------------

    def console(self):
        with self._lock:
            return "\n".join(line for _, line in self.lines)

    def mark(self):
        """The console position now: pass it to wait(since=) to look only
        at what the guest prints from here on."""
        with self._lock:
            return len(self.lines)

    def grep(self, pattern, since=0):
        """(host time, re.Match) of every console line matching pattern."""
        rx = re.compile(pattern)
        with self._lock:
            lines = self.lines[since:]
        return [(t, m) for t, m in ((t, rx.search(l)) for t, l in lines) if m]

    def wait(self, pattern=None, timeout=60, every=None, interval=0.5,
             since=0):
        """Wait for a console line matching pattern (a regex), for QEMU to
        exit, for timeout seconds, or until every(vm, wait) returns true;
        every runs each interval and may call wait.cap(seconds)."""
        rx = re.compile(pattern) if pattern else None
        w = Wait(timeout)
        pos = since
        while True:
            if rx:
                with self._lock:
                    new = self.lines[pos:]
                pos += len(new)
                for _, line in new:
                    m = rx.search(line)
                    if m:
                        w.match, w.why = m, "matched"
                        break
                if w.match:
                    break
            if not self.alive():
                if rx and self._reader:
                    # the last lines of a guest that powered QEMU off
                    self._reader.join(2)
                    with self._lock:
                        new = self.lines[pos:]
                    for _, line in new:
                        m = rx.search(line)
                        if m:
                            w.match, w.why = m, "matched"
                            break
                w.why = w.why or "exited"
                break
            if time.time() >= w.deadline:
                w.why = "timeout"
                break
            if every and every(self, w):
                w.why = "stopped"
                break
            time.sleep(max(0.0, min(interval, w.deadline - time.time())))
        w.elapsed = time.time() - w.start
        return w

    # --- QMP --------------------------------------------------------------

    def qmp(self, command, **args):
        """Run a QMP command; its return value.  Raises QmpError when QEMU
        answers with an error, QemuExited when QEMU is gone."""
        _, execute_error = self.build.qmp_class()
        if not self.mon:
            raise QemuExited(self, "before %s" % command)
        try:
            return self.mon.cmd(command, **args)
        except execute_error as e:
            raise QmpError(command, e.error_class, e.error.error.desc) \
                from None
        except Exception:
            if not self.alive():
                raise QemuExited(self, "during %s" % command) from None
            raise

    def hmp(self, command_line):
        return self.qmp("human-monitor-command", **{"command-line":
                                                     command_line})

    def wait_event(self, name, timeout=30, match=None):
        """The first QMP event called name (and for which match(event) is
        true) since the last call, or None after timeout seconds."""
        deadline = time.time() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and (match is None or match(ev)):
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0 or not self.mon:
                return None
            try:
                ev = self.mon.pull_event(wait=float(min(left, 1.0)))
            except Exception:
                ev = None
                if not self.alive():
                    return None
            if ev:
                self.events.append(ev)

    def virtio_path(self, dev_id):
        """The QOM path of the VirtIODevice behind -device/device_add id=
        dev_id (a virtio-*-pci proxy holds it as virtio-backend)."""
        path = "/machine/peripheral/" + dev_id
        try:
            children = self.qmp("qom-list", path=path)
        except QmpError:
            return path
        if any(c["name"] == "virtio-backend" for c in children):
            path += "/virtio-backend"
        return path

    def virtio_status(self, dev_id):
        return self.qmp("x-query-virtio-status",
                        path=self.virtio_path(dev_id))

    def restricted_dma(self, dev_id):
        """x-query-virtio-status' restricted-dma member: window-address,
        window-size, window-open, driver-accepted, refusals, violations."""
        return self.virtio_status(dev_id).get("restricted-dma", {})

    def qom_get(self, path, prop):
        return self.qmp("qom-get", path=path, property=prop)

    def pool_base(self, pool_id):
        """Where the board placed the restricted-dma-pool object pool_id."""
        return self.qom_get("/objects/" + pool_id, "addr")

    def pmemsave(self, addr, size):
        """size bytes of guest-physical memory from addr."""
        path = os.path.join(self.work, "%s.pmem" % self.name)
        self.qmp("pmemsave", val=addr, size=size, filename=path)
        try:
            with open(path, "rb") as f:
                return f.read()
        finally:
            os.unlink(path)

    def device_add(self, driver, dev_id, **props):
        """Hot-plug a device while the guest runs.  props take QAPI JSON
        types (a size is an int, not "8M"); names as QEMU spells them:
        vm.device_add("virtio-blk-pci", "hp0", bus="rp0", drive="d1",
        **{"disable-legacy": "on", "restricted-dma-bar-size": 8 << 20})."""
        self.qmp("device_add", driver=driver, id=dev_id, **props)
        self.devices[dev_id] = driver

    def device_del(self, dev_id, timeout=30):
        """Unplug dev_id and wait for QEMU's DEVICE_DELETED (the guest must
        let go of it first); False if it did not come within timeout."""
        self.qmp("device_del", id=dev_id)
        ev = self.wait_event("DEVICE_DELETED", timeout,
                             lambda e: e.get("data", {}).get("device") ==
                             dev_id)
        if ev:
            self.devices.pop(dev_id, None)
        return ev is not None

    def migrate_to(self, dst, uri, timeout=120, converge_after=None):
        """Migrate this QEMU into dst (started with incoming="defer") over
        uri (for example "unix:/path"); returns query-migrate's final
        answer on the source.

        A caller that slows the migration down (max-bandwidth) to keep the
        guest working while its RAM is copied passes converge_after: once
        that many dirty-page passes are done, the limits are lifted (as
        tests/qtest/migration's migrate_ensure_converge() does), so that
        a guest that dirties memory faster than the limit, as a TCG guest
        on a loaded host can, still completes."""
        dst.qmp("migrate-incoming", uri=uri)
        self.qmp("migrate", uri=uri)
        deadline = time.time() + timeout
        while True:
            st = self.qmp("query-migrate")
            if st.get("status") in ("completed", "failed", "cancelled"):
                return st
            passes = st.get("ram", {}).get("dirty-sync-count", 0)
            if converge_after is not None and passes >= converge_after:
                self.qmp("migrate-set-parameters",
                         **{"max-bandwidth": 1 << 30,
                            "downtime-limit": 30000})
                converge_after = None
            if time.time() > deadline:
                raise RunnerError("%s: migration still %s after %d s, "
                                  "%d dirty-page passes"
                                  % (self.name, st.get("status"), timeout,
                                     passes))
            time.sleep(0.2)


def driver_id(device):
    m = re.search(r"(?:^|,)id=([^,]+)", device)
    return m.group(1) if m else None


class Helper:
    """A backend process beside QEMU (qemu-storage-daemon, ...): output to
    work/NAME.log; ready_path, if given, is waited for (a socket)."""

    def __init__(self, argv, name, work, ready_path=None, timeout=10):
        self.name = name
        self.log_path = os.path.join(work, name + ".log")
        if ready_path and os.path.exists(ready_path):
            os.unlink(ready_path)
        self._logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self._logf,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.time() + timeout
        while ready_path and not os.path.exists(ready_path):
            if self.proc.poll() is not None or time.time() > deadline:
                break
            time.sleep(0.1)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        """Terminate it; returns its output."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()
        with open(self.log_path, errors="replace") as f:
            return f.read()


def feature_kernel_alone():
    """The feature-aware arm64 kernel without the pool-aware one, for the
    demo: guest.aware_kernels() builds both, the second from a different
    config, which doubles a first run.  The same image as aware_kernels()'
    Image.feature (its fragments and the series), in a cache entry of its
    own; returns the directory holding Image.feature."""
    return guest.linux_kernels("aware-feature", "arm64", [
        ("Image.feature", guest.arm64_fragments()[1], True)])


class Guests:
    """Kernels (from guest.py's cache) and initramfses (built once per run
    into work).  Kernel kinds: "unaware" is Debian's packaged kernel
    (virtio as modules); "pool" and "feature" are the fork's aware arm64
    kernels (Image.pool, Image.feature); "feature" on x86_64 is the fork's
    x86_64 kernel with the series (bzImage).  alone=True builds the feature
    kernel without the pool one (see feature_kernel_alone())."""

    def __init__(self, work, alone=False):
        self.work = work
        self.alone = alone
        self.kernels = {}
        self.initrds = {}

    def kernel(self, arch, kind):
        """(kernel image, directory of its modules or None)."""
        key = (arch, kind)
        if key not in self.kernels:
            if kind == "unaware":
                d = guest.debian_kernel(ARCHES[arch]["debian"])
                self.kernels[key] = (os.path.join(d, "vmlinuz"), d)
            elif kind == "feature" and arch == "aarch64" and self.alone:
                self.kernels[key] = (os.path.join(feature_kernel_alone(),
                                                  "Image.feature"), None)
            elif kind in ("pool", "feature") and arch == "aarch64":
                d = guest.aware_kernels()
                self.kernels[key] = (os.path.join(d, "Image." + kind), None)
            elif kind == "feature" and arch == "x86_64":
                self.kernels[key] = (os.path.join(guest.x86_64_kernel(),
                                                  "bzImage"), None)
            else:
                raise RunnerError("no %s kernel for %s" % (kind, arch))
        return self.kernels[key]

    def initrd(self, arch, init, kind=None, modules=(), extra=(), files=None,
               name=None):
        """A busybox initramfs for arch with init as /init; modules (and
        their dependencies) from kind's kernel, loaded in order by an init
        that reads /lib/modules/order; extra: (host file, path) pairs,
        copied executable; files: {path: bytes}."""
        key = (arch, init, kind, tuple(modules), tuple(extra),
               tuple(sorted((files or {}).items())))
        if key not in self.initrds:
            kdir = self.kernel(arch, kind)[1] if modules else None
            out = os.path.join(self.work, "initrd-%s.gz" % (
                name or "%s-%d" % (arch, len(self.initrds))))
            guest.initramfs(ARCHES[arch]["debian"], init, out, kdir,
                            list(modules), list(extra), files)
            self.initrds[key] = out
        return self.initrds[key]
