"""Hosts apart on one machine: Linux network namespaces linked by veth pairs (root only).

``Namespaces.create(["acme", "bravo"])`` builds a namespace ``park`` with a bridge holding the
park's address (``.1`` of a private /24 no route of this machine touches), one namespace per
other host on that bridge (``.10``, ``.11``, ...) and a veth from this machine's namespace
(``.254``), so the tests reach the park's public addresses as a researcher's machine would.
Only the /24 is routed: a namespace reaches nothing else. ``remove()`` kills every process
left in the namespaces and deletes them and the veths; ``create`` first removes what a crashed
earlier run left (names carry the creating process's id: only a dead owner's are removed).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "fpns"  # namespaces fpns<pid>-<host>, this machine's veth ends fpns<pid>h
RANGE = ipaddress.IPv4Network("10.213.0.0/16")
BRIDGE = "fpbr"  # inside the park's namespace


class NetnsUnavailableError(RuntimeError):
    """This machine cannot create network namespaces for the test (the reason)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, as CI does)"
    if shutil.which("ip") is None:
        return "`ip` is missing: apt-get install iproute2"
    return None


def _owner_dead(name: str) -> bool:
    found = re.match(rf"{PREFIX}(\d+)[-hpbi]", name)
    if found is None:
        return False
    pid = int(found.group(1))
    return pid == os.getpid() or not Path(f"/proc/{pid}").exists()


def _namespaces() -> list[str]:
    listed = ip("netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def _kill_all(namespace: str) -> None:
    """SIGKILL every process in ``namespace`` until none is left (they may fork meanwhile)."""
    for _ in range(50):
        pids = [int(p) for p in ip("netns", "pids", namespace, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    raise RuntimeError(f"processes keep running in the namespace {namespace}")


def remove_leftovers() -> None:
    """What a crashed earlier run (a dead process, or this one) left behind."""
    for namespace in _namespaces():
        if namespace.startswith(PREFIX) and _owner_dead(namespace):
            _kill_all(namespace)
            ip("netns", "delete", namespace, check=False)
    for link in json.loads(ip("-j", "link", "show").stdout or "[]"):
        name = str(link.get("ifname", ""))
        if name.startswith(PREFIX) and _owner_dead(name):
            ip("link", "delete", name, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A random /24 of RANGE that no route and no address of this machine overlaps."""
    taken: list[ipaddress.IPv4Network] = []
    for route in json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        if route.get("dst", "default") != "default":
            taken.append(ipaddress.IPv4Network(route["dst"], strict=False))
    for link in json.loads(ip("-j", "-4", "addr", "show").stdout or "[]"):
        for address in link.get("addr_info", []):
            taken.append(ipaddress.IPv4Network(f"{address['local']}/32"))
    subnets = list(RANGE.subnets(new_prefix=24))[1:-1]
    random.shuffle(subnets)
    for subnet in subnets[:50]:
        if not any(subnet.overlaps(t) for t in taken):
            return subnet
    raise NetnsUnavailableError(f"no /24 of {RANGE} is free of routes on this machine")


@dataclass
class Namespaces:
    """The namespaces of one test: ``park`` and the other hosts, on one private /24."""

    subnet: ipaddress.IPv4Network
    others: list[str]
    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")

    @classmethod
    def create(cls, others: list[str]) -> Namespaces:
        reason = unavailable()
        if reason:
            raise NetnsUnavailableError(reason)
        remove_leftovers()
        hosts = cls(_free_subnet(), others)
        try:
            hosts._build()
        except BaseException as exc:
            hosts.remove()
            if isinstance(exc, subprocess.CalledProcessError):
                detail = (exc.stderr or "").strip()
                raise NetnsUnavailableError(
                    f"cannot build network namespaces: {exc.cmd}: {detail}"
                ) from exc
            raise
        return hosts

    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def exec(self, host: str) -> tuple[str, ...]:
        """The prefix that runs a command line on ``host``."""
        return ("ip", "netns", "exec", self.namespace(host))

    def address(self, host: str) -> str:
        """``host``'s address on the park's network (``this``: this machine's)."""
        if host == "park":
            return str(self.subnet[1])
        if host == "this":
            return str(self.subnet[254])
        return str(self.subnet[10 + self.others.index(host)])

    @property
    def outside(self) -> str:
        """This machine's end of its veth into the park."""
        return f"{self.tag}h"

    def _build(self) -> None:
        park = self.namespace("park")
        ip("netns", "add", park)
        ip("-n", park, "link", "set", "lo", "up")
        ip("-n", park, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", park, "addr", "add", f"{self.address('park')}/24", "dev", BRIDGE)
        ip("-n", park, "link", "set", BRIDGE, "up")
        # this machine: a veth whose other end is a port of the park's bridge
        ip("link", "add", self.outside, "type", "veth", "peer", "name", f"{self.tag}p")
        ip("link", "set", f"{self.tag}p", "netns", park)
        ip("-n", park, "link", "set", f"{self.tag}p", "master", BRIDGE, "up")
        ip("addr", "add", f"{self.address('this')}/24", "dev", self.outside)
        ip("link", "set", self.outside, "up")
        for i, host in enumerate(self.others):
            namespace, inner, port = self.namespace(host), f"{self.tag}i{i}", f"{self.tag}b{i}"
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("link", "add", inner, "netns", namespace, "type", "veth", "peer", "name", port)
            ip("link", "set", port, "netns", park)
            ip("-n", park, "link", "set", port, "master", BRIDGE, "up")
            ip("-n", namespace, "addr", "add", f"{self.address(host)}/24", "dev", inner)
            ip("-n", namespace, "link", "set", inner, "up")

    def remove(self) -> None:
        """Kill every process in the namespaces, delete them (their veths go with them) and
        this machine's veth. Safe to call twice, or after a partial build."""
        for host in ["park", *self.others]:
            namespace = self.namespace(host)
            if namespace in _namespaces():
                _kill_all(namespace)
                ip("netns", "delete", namespace, check=False)
        for link in json.loads(ip("-j", "link", "show").stdout or "[]"):
            if str(link.get("ifname", "")).startswith(self.tag):  # a pair goes with one end
                ip("link", "delete", str(link["ifname"]), check=False)

    def leftovers(self) -> list[str]:
        """Namespaces and links of this run that still exist (none after ``remove``)."""
        names = [n for n in _namespaces() if n.startswith(f"{self.tag}-")]
        links = json.loads(ip("-j", "link", "show").stdout or "[]")
        return names + [str(x["ifname"]) for x in links if str(x["ifname"]).startswith(self.tag)]

    def listeners(self, host: str) -> list[tuple[str, int, str]]:
        """TCP sockets listening on ``host``: (address, port, process)."""
        out = subprocess.run(
            [*self.exec(host), "ss", "-Hltnp"], capture_output=True, text=True, check=True
        ).stdout
        found = []
        for line in out.splitlines():
            fields = line.split()
            local = fields[3]
            address, _, port = local.rpartition(":")
            process = re.search(r'users:\(\("([^"]+)"', line)
            found.append((address.strip("[]"), int(port), process.group(1) if process else "?"))
        return found

    def pids(self, host: str) -> list[int]:
        out = ip("netns", "pids", self.namespace(host), check=False).stdout
        return [int(p) for p in out.split()]
