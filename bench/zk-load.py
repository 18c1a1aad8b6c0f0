#!/usr/bin/env python3
"""Load and failover figures for a ZooKeeper ensemble, measured with a stock client (kazoo),
so that a real ZooKeeper and our `cluster zk` are measured by the same code.

    python3 bench/zk-load.py --hosts H:P,H:P,H:P [--seconds 10] [--window 64]
                             [--kill-cmd 'kill -9 {pid}'] [--phases sync,async,failover]

Phases, each from one client connected to one server (a follower unless --connect says
otherwise, and always a follower for failover):

  sync      `set` on one znode, one at a time, for --seconds: ops/s and latency percentiles.
  async     `set_async` on the same znode with --window requests outstanding: ops/s.
  failover  asks every server for `srvr` to find the leader, runs --kill-cmd on it, and
            measures from the kill (a) until a surviving server says "Mode: leader" and
            (b) until a write sent after the kill succeeds through the client, which is
            connected to a surviving follower only. Reports whether the session survived.

--kill-cmd is a shell command template with {pid}, {port}, {host} and {index} (1-based position
in --hosts) of the leader. {pid} is the process listening on the leader's client port, found
through /proc, so `kill -9 {pid}` works for any server that is one process per port: a real
ZooKeeper or a node of `cluster zk`. The failover phase leaves the ensemble one server short;
run it last (the default order does).

Runs under the virtualenv of bench/kazoo/venv.sh when kazoo is not importable.
Exit status: 0 on success, 1 if a phase failed (no leader, no write within --failover-timeout),
2 on a usage or connection error.
"""

import argparse
import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry
except ImportError:
    if os.environ.get("ZK_LOAD_REEXEC"):
        sys.exit("zk-load: kazoo is not importable even in the virtualenv")
    py = subprocess.run(
        ["bash", os.path.join(HERE, "kazoo", "venv.sh")], stdout=subprocess.PIPE, check=False
    )
    if py.returncode != 0:
        sys.exit(2)
    os.environ["ZK_LOAD_REEXEC"] = "1"
    exe = py.stdout.decode().strip()
    os.execv(exe, [exe, os.path.abspath(__file__)] + sys.argv[1:])


# kazoo logs every dropped connection as a warning; the failover phase drops them on purpose.
logging.getLogger("kazoo").setLevel(logging.CRITICAL)


def die(msg, code=2):
    print("zk-load: " + msg, file=sys.stderr)
    sys.exit(code)


def fourlw(host, port, word, timeout=1.0):
    """One four-letter word; '' if the server does not answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(word.encode())
            out = []
            while True:
                b = s.recv(4096)
                if not b:
                    break
                out.append(b)
            return b"".join(out).decode(errors="replace")
    except OSError:
        return ""


def mode(host, port):
    m = re.search(r"^Mode: (\w+)", fourlw(host, port, "srvr"), re.M)
    return m.group(1) if m else None


def pid_listening_on(port):
    """The process that has a TCP socket listening on `port`, through /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local, state, inode = cols[1], cols[3], cols[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % inode)
        except OSError:
            continue
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes:
                    return int(pid)
            except OSError:
                continue
    return None


def percentile(sorted_xs, q):
    if not sorted_xs:
        return float("nan")
    return sorted_xs[min(len(sorted_xs) - 1, int(q * len(sorted_xs)))]


def fast_retry():
    # Reconnect every 50 ms without backoff, so that failover time measures the servers,
    # not the client's backoff schedule.
    return KazooRetry(max_tries=-1, delay=0.05, backoff=1, max_jitter=0.0, max_delay=0.05)


def connect(addr, session_timeout):
    zk = KazooClient(
        hosts=addr, timeout=session_timeout, connection_retry=fast_retry(), randomize_hosts=False
    )
    try:
        zk.start(timeout=15)
    except Exception as e:
        die("cannot connect to %s: %s" % (addr, e))
    return zk


def sync_phase(zk, path, value, seconds):
    lat = []
    end = time.monotonic() + seconds
    start = time.monotonic()
    while True:
        t = time.monotonic()
        if t >= end:
            break
        zk.set(path, value)
        lat.append(time.monotonic() - t)
    elapsed = time.monotonic() - start
    lat.sort()
    return len(lat), elapsed, lat


def async_phase(zk, path, value, seconds, window):
    slots = threading.Semaphore(window)
    lock = threading.Lock()
    counts = {"ok": 0, "err": 0, "last": 0.0}

    def done(res):
        with lock:
            counts["ok" if res.successful() else "err"] += 1
            counts["last"] = time.monotonic()
        slots.release()

    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        if not slots.acquire(timeout=5):
            die("async: no reply for 5 s with %d requests outstanding" % window, 1)
        zk.set_async(path, value).rawlink(done)
    for _ in range(window):  # drain
        if not slots.acquire(timeout=10):
            die("async: outstanding requests did not finish", 1)
    if counts["ok"] == 0:
        die("async: no set succeeded (%d errors)" % counts["err"], 1)
    return counts["ok"], counts["err"], counts["last"] - start


def failover_phase(servers, leader, follower, kill_cmd, path, value, timeout, session_timeout):
    lhost, lport = servers[leader]
    fields = {"host": lhost, "port": lport, "index": leader + 1}
    if "{pid}" in kill_cmd:
        pid = pid_listening_on(lport)
        if pid is None:
            die("no process found listening on port %d (needed for {pid})" % lport)
        fields["pid"] = pid
    try:
        cmd = kill_cmd.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        die("--kill-cmd: bad placeholder %s (use {pid} {port} {host} {index})" % e)

    addr = "%s:%d" % servers[follower]
    zk = connect(addr, session_timeout)
    zk.ensure_path(path)
    zk.set(path, value)
    session = zk.client_id

    survivors = [s for i, s in enumerate(servers) if i != leader]
    new_leader = {}

    def watch_leader():
        while "at" not in new_leader and time.monotonic() < deadline:
            for h, p in survivors:
                if mode(h, p) == "leader":
                    new_leader["at"] = time.monotonic()
                    new_leader["addr"] = "%s:%d" % (h, p)
                    return
            time.sleep(0.01)

    t_kill = time.monotonic()
    deadline = t_kill + timeout
    rc = subprocess.run(cmd, shell=True).returncode
    if rc != 0:
        die("--kill-cmd %r exited %d" % (cmd, rc))
    t_killed = time.monotonic()
    watcher = threading.Thread(target=watch_leader, daemon=True)
    watcher.start()

    t_write = None
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            zk.set_async(path, value).get(timeout=max(0.01, deadline - time.monotonic()))
            t_write = time.monotonic()
            break
        except Exception:
            time.sleep(0.01)
    watcher.join(timeout=max(0.0, deadline - time.monotonic()) + 1)
    kept = zk.client_id == session and t_write is not None
    zk.stop()
    zk.close()
    return {
        "killed": "%s:%d (server %d)" % (lhost, lport, leader + 1),
        "cmd": cmd,
        "kill_secs": t_killed - t_kill,
        "leader_secs": new_leader["at"] - t_kill if "at" in new_leader else None,
        "new_leader": new_leader.get("addr"),
        "write_secs": t_write - t_kill if t_write else None,
        "via": addr,
        "attempts": attempts,
        "session_kept": kept,
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:4]),
    )
    ap.add_argument("--hosts", default=os.environ.get("ZK_HOSTS"),
                    help="connect string host:port,... (default $ZK_HOSTS)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of sync and async runs")
    ap.add_argument("--window", type=int, default=64, help="outstanding requests in async")
    ap.add_argument("--value-size", type=int, default=16, help="bytes written by each set")
    ap.add_argument("--phases", default="sync,async,failover",
                    help="comma-separated subset of sync,async,failover")
    ap.add_argument("--connect", choices=("follower", "leader"), default="follower",
                    help="server the sync and async client talks to")
    ap.add_argument("--kill-cmd", default="kill -9 {pid}",
                    help="shell template run on the leader; {pid} {port} {host} {index}")
    ap.add_argument("--failover-timeout", type=float, default=30.0)
    ap.add_argument("--session-timeout", type=float, default=10.0, help="seconds")
    ap.add_argument("--path", default="/zk-load")
    ap.add_argument("--json", help="also write the figures to this file, as JSON")
    args = ap.parse_args()

    if not args.hosts:
        die("no --hosts and no $ZK_HOSTS")
    servers = []
    for hp in args.hosts.split(","):
        host, _, port = hp.strip().rpartition(":")
        if not host or not port.isdigit():
            die("--hosts: %r is not host:port" % hp)
        servers.append((host, int(port)))
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for p in phases:
        if p not in ("sync", "async", "failover"):
            die("--phases: unknown phase %r" % p)
    if args.window < 1:
        die("--window must be at least 1")

    modes = [mode(h, p) for h, p in servers]
    leaders = [i for i, m in enumerate(modes) if m == "leader"]
    followers = [i for i, m in enumerate(modes) if m == "follower"]
    if not any(modes):
        die("no server in %s answers the four-letter word srvr" % args.hosts)
    if len(leaders) != 1:
        die("expected one leader from srvr, got modes %s" % dict(zip(args.hosts.split(","), modes)))
    leader = leaders[0]
    if not followers and ("failover" in phases or args.connect == "follower"):
        die("no follower to connect to (modes %s)" % modes)
    target = leader if args.connect == "leader" else followers[0]
    addr = "%s:%d" % servers[target]
    value = b"x" * args.value_size
    print("zk-load: %d servers, leader %s:%d; %s-byte values"
          % (len(servers), servers[leader][0], servers[leader][1], args.value_size), file=sys.stderr)

    rows = []
    figures = {}
    failed = False
    if "sync" in phases or "async" in phases:
        zk = connect(addr, args.session_timeout)
        zk.ensure_path(args.path)
        zk.set(args.path, value)
        if "sync" in phases:
            n, secs, lat = sync_phase(zk, args.path, value, args.seconds)
            rows.append(("sync set", addr, n, 0, secs, n / secs,
                         percentile(lat, 0.5) * 1e3, percentile(lat, 0.99) * 1e3))
        if "async" in phases:
            ok, err, secs = async_phase(zk, args.path, value, args.seconds, args.window)
            rows.append(("async set (window %d)" % args.window, addr, ok, err, secs, ok / secs,
                         None, None))
            failed |= err > 0
        zk.stop()
        zk.close()

    if rows:
        print("%-22s %-17s %8s %6s %7s %9s %7s %7s"
              % ("phase", "client server", "ops", "errors", "secs", "ops/s", "p50 ms", "p99 ms"))
    for name, a, n, err, secs, rate, p50, p99 in rows:
        print("%-22s %-17s %8d %6d %7.2f %9.0f %7s %7s" % (
            name, a, n, err, secs, rate,
            "-" if p50 is None else "%.2f" % p50, "-" if p99 is None else "%.2f" % p99))

    if "failover" in phases:
        # Ask again: leadership may have moved during the load phases.
        modes = [mode(h, p) for h, p in servers]
        leaders = [i for i, m in enumerate(modes) if m == "leader"]
        followers = [i for i, m in enumerate(modes) if m == "follower"]
        if len(leaders) != 1 or not followers:
            die("failover: need one leader and a follower, got modes %s" % modes, 1)
        leader = leaders[0]
        r = failover_phase(servers, leader, followers[0], args.kill_cmd, args.path, value,
                           args.failover_timeout, args.session_timeout)
        fmt = lambda s: "none within %.0f s" % args.failover_timeout if s is None else "%.3f s" % s
        if rows:
            print()
        print("failover: ran %r on the leader %s" % (r["cmd"], r["killed"]))
        print("  %-34s %s" % ("new leader (srvr on survivors)", fmt(r["leader_secs"])
                              + ("  (%s)" % r["new_leader"] if r["new_leader"] else "")))
        print("  %-34s %s" % ("first write after the kill", fmt(r["write_secs"])
                              + "  (via %s, %d attempts)" % (r["via"], r["attempts"])))
        print("  %-34s %s" % ("session kept", "yes" if r["session_kept"] else "no"))
        failed |= r["leader_secs"] is None or r["write_secs"] is None
        figures["leader_secs"] = r["leader_secs"]
        figures["write_secs"] = r["write_secs"]
        figures["session_kept"] = r["session_kept"]
    if args.json:
        for name, _, n, err, secs, rate, p50, p99 in rows:
            key = "sync" if name.startswith("sync") else "async"
            figures[key + "_ops_per_sec"] = rate
            figures[key + "_errors"] = err
            if p50 is not None:
                figures[key + "_p50_ms"] = p50
                figures[key + "_p99_ms"] = p99
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
