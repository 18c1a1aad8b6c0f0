"""pytest plugin: run kazoo's own test suite against an ensemble that is already running.

kazoo's harness (kazoo/testing/harness.py) starts its own Java servers through
`get_global_cluster()`, which it looks up in its module at call time. With
ZK_HOSTS=host:port,host:port,... set, this plugin puts a stand-in in its place that
points at those servers and gives exactly what the harness and the tests use:

- `cluster[i]`, `iter(cluster)`: servers with `.address`, `.client_port`, `.running`.
- `cluster.start()`: restarts the servers this plugin stopped, else nothing. The servers are
  up; whoever started them owns them.
- `cluster.terminate()`: no-op. `KazooTestCase.tearDownClass` calls it after every class, and
  the harness calls it when a first connection fails; neither may stop an ensemble it did
  not start.
- `server.stop()`, `server.run()`, `cluster.stop()`: with ZK_SERVER_CMD set, run it (see below).
  Without it they skip the test: a test that stops a server expects `run()` to bring it back,
  which an external ensemble cannot promise. test_connection.py calls `stop()` in a thread,
  where a skip cannot reach pytest, so a test that asked for a stop and then failed is
  reported as skipped with the same reason.
- `cluster.reset()`, `server.reset()`: skip (they wipe a server's data).
- `secure_address`, `get_ssl_client_configuration()`: skip (no TLS port).
- `get_logs()`: empty (kazoo's conftest calls it when a test fails).
- TestReadOnlyMode asks for a cluster with local sessions (ZOOKEEPER_LOCAL_SESSION_RO=true,
  for which kazoo's harness restarts its servers): skipped unless ZK_LOCAL_SESSIONS=true says
  the ensemble runs with localSessionsEnabled=true.

ZK_SERVER_CMD is a shell command template for stopping and restarting one server of the
ensemble, with {action} (stop or start), {index} (1-based position in ZK_HOSTS), {host} and
{port}. It must return once the server is down, or once its client port accepts connections.
bench/zk-real.sh sets it for its own servers; a stop there is SIGTERM and a start reuses the
server's data, as kazoo's harness does.

ZK_TRACE_OPS=FILE also records what went over the wire: every request kazoo sent (opcode,
create flags, watch flag, conditional version, multi sub-operations, auth scheme, a Connect that
re-attaches a session), every error code and watch event it got back, and every four-letter
word. The trace goes to FILE as JSON, per test and in total, and its totals are printed at the
end. It is the list of what a server has to implement to pass the same tests.

Load it with `-p conftest` and this directory on PYTHONPATH (bench/kazoo-tests.sh does).
"""

import collections
import json
import os
import subprocess
import threading

import pytest

HOSTS_ENV = "ZK_HOSTS"
SERVER_CMD_ENV = "ZK_SERVER_CMD"
LOCAL_SESSIONS_ENV = "ZK_LOCAL_SESSIONS"
TRACE_ENV = "ZK_TRACE_OPS"

_stop_asked = threading.Event()
_stop_reason = [""]


def _skip(reason):
    _stop_reason[0] = reason
    _stop_asked.set()
    pytest.skip(reason)


class ExternalServer:
    def __init__(self, index, host, port):
        self.index = index
        self.host = host
        self.client_port = int(port)
        self._running = True

    def _control(self, action):
        template = os.environ.get(SERVER_CMD_ENV)
        if not template:
            _skip(
                "stops server %d and restarts it; the %s ensemble is external and %s is not set"
                % (self.index + 1, HOSTS_ENV, SERVER_CMD_ENV)
            )
        cmd = template.format(
            action=action, index=self.index + 1, host=self.host, port=self.client_port
        )
        r = subprocess.run(
            cmd,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
        if r.returncode != 0:
            raise RuntimeError(
                "%s %r exited %d: %s"
                % (SERVER_CMD_ENV, cmd, r.returncode, r.stdout.decode(errors="replace").strip())
            )

    @property
    def address(self):
        return "%s:%s" % (self.host, self.client_port)

    @property
    def secure_address(self):
        _skip("needs a TLS client port; %s gives plain ports only" % HOSTS_ENV)

    @property
    def secure_client_port(self):
        _skip("needs a TLS client port; %s gives plain ports only" % HOSTS_ENV)

    @property
    def running(self):
        return self._running

    def run(self):
        if not self._running:
            self._control("start")
            self._running = True

    def stop(self):
        if self._running:
            self._control("stop")
            self._running = False

    def reset(self):
        _skip(
            "wipes server %d's data; the %s ensemble is external"
            % (self.index + 1, HOSTS_ENV)
        )

    def destroy(self):
        pass

    def get_logs(self, num_lines=100):
        return []


class ExternalCluster:
    def __init__(self, hosts):
        self._servers = []
        for i, hp in enumerate(h.strip() for h in hosts.split(",")):
            host, _, port = hp.rpartition(":")
            if not host or not port.isdigit():
                raise pytest.UsageError(
                    "%s: %r is not host:port" % (HOSTS_ENV, hp)
                )
            self._servers.append(ExternalServer(i, host, port))

    def __getitem__(self, k):
        return self._servers[k]

    def __iter__(self):
        return iter(self._servers)

    def __len__(self):
        return len(self._servers)

    def start(self):
        # Reverse order, as kazoo's ZookeeperCluster.start does.
        for server in reversed(self._servers):
            server.run()

    def terminate(self):
        pass

    def stop(self):
        for server in self._servers:
            server.stop()

    def reset(self):
        _skip("wipes every server; the %s ensemble is external" % HOSTS_ENV)

    def get_logs(self):
        return []

    def get_ssl_client_configuration(self):
        _skip("needs TLS; the %s ensemble has no TLS port" % HOSTS_ENV)


# --- wire trace -----------------------------------------------------------

_CREATE_MODES = {
    0: "PERSISTENT",
    1: "EPHEMERAL",
    2: "PERSISTENT_SEQUENTIAL",
    3: "EPHEMERAL_SEQUENTIAL",
    4: "CONTAINER",
    5: "PERSISTENT_WITH_TTL",
    6: "PERSISTENT_SEQUENTIAL_WITH_TTL",
}


class Trace:
    def __init__(self):
        self.lock = threading.Lock()
        self.totals = collections.Counter()
        self.by_test = collections.defaultdict(collections.Counter)
        self.test = "(outside tests)"

    def add(self, item):
        with self.lock:
            self.totals[item] += 1
            self.by_test[self.test][item] += 1


def _describe(req):
    """One line per feature a request needs, e.g. 'Create2 EPHEMERAL_SEQUENTIAL'."""
    name = type(req).__name__
    if name == "Connect":
        out = "Connect " + ("re-attach session" if req.session_id else "new session")
        if req.read_only:
            out += " read_only"
        return [out]
    if name in ("Create", "Create2"):
        out = "%s %s" % (name, _CREATE_MODES.get(req.flags, "flags=%d" % req.flags))
        # The ACL's schemes only: digest ids differ from run to run.
        acl = sorted({a.id.scheme for a in req.acl})
        if acl != ["world"]:
            out += " acl=" + ",".join(acl)
        return [out]
    if name in ("Exists", "GetData", "GetChildren", "GetChildren2"):
        return ["%s %s" % (name, "watch" if req.watcher is not None else "no-watch")]
    if name in ("SetData", "Delete", "CheckVersion", "SetACL"):
        return ["%s %s" % (name, "any-version" if req.version == -1 else "version")]
    if name == "Transaction":
        subs = []
        for op in req.operations:
            subs.extend("Multi/" + s for s in _describe(op))
        return ["Transaction(multi)"] + subs
    if name == "Auth":
        return ["Auth %s" % req.scheme]
    return [name]


def _install_trace(trace):
    from kazoo.client import KazooClient
    from kazoo.exceptions import EXCEPTIONS
    from kazoo.protocol import connection as conn
    from kazoo.protocol.serialization import Watch
    from kazoo.protocol.states import EventType

    events = {
        1: EventType.CREATED,
        2: EventType.DELETED,
        3: EventType.CHANGED,
        4: EventType.CHILD,
    }
    handler = conn.ConnectionHandler
    submit, read_response, read_watch = (
        handler._submit,
        handler._read_response,
        handler._read_watch_event,
    )

    def _submit(self, request, timeout, xid=None):
        for item in _describe(request):
            trace.add("request: " + item)
        return submit(self, request, timeout, xid)

    def _read_response(self, header, buffer, offset):
        if header.err:
            try:
                req = type(self.client._pending[0][0]).__name__
            except IndexError:
                req = "?"
            exc = EXCEPTIONS[header.err]
            trace.add("error: %s -> %s (%d)" % (req, exc.__name__, header.err))
        return read_response(self, header, buffer, offset)

    def _read_watch_event(self, buffer, offset):
        try:
            watch, _ = Watch.deserialize(buffer, offset)
            trace.add("event: " + events.get(watch.type, str(watch.type)))
        except Exception:
            trace.add("event: (undecodable)")
        return read_watch(self, buffer, offset)

    command = KazooClient.command

    def _command(self, cmd=b"ruok"):
        trace.add("four-letter word: " + cmd.decode("ascii", "replace"))
        return command(self, cmd)

    handler._submit = _submit
    handler._read_response = _read_response
    handler._read_watch_event = _read_watch_event
    KazooClient.command = _command


_trace = None
_cluster = [None]


def pytest_configure(config):
    global _trace
    hosts = os.environ.get(HOSTS_ENV)
    if hosts:
        from kazoo.testing import harness

        cluster = ExternalCluster(hosts)
        _cluster[0] = cluster

        def get_global_cluster():
            # kazoo's TestReadOnlyMode sets this before asking for the cluster, and kazoo's
            # harness then restarts its servers with localSessionsEnabled=true.
            if os.environ.get("ZOOKEEPER_LOCAL_SESSION_RO") == "true" and (
                os.environ.get(LOCAL_SESSIONS_ENV) != "true"
            ):
                # Its tearDown, which would unset it, does not run after a skip in setUp.
                os.environ.pop("ZOOKEEPER_LOCAL_SESSION_RO")
                _skip(
                    "needs localSessionsEnabled=true; set %s=true if the ensemble has it"
                    % LOCAL_SESSIONS_ENV
                )
            return cluster

        harness.get_global_cluster = get_global_cluster
    if os.environ.get(TRACE_ENV):
        _trace = Trace()
        _install_trace(_trace)


def pytest_sessionfinish(session):
    # Leave the ensemble whole for whoever runs next.
    cluster = _cluster[0]
    if cluster is not None and not all(s.running for s in cluster):
        cluster.start()


def pytest_report_header(config):
    hosts = os.environ.get(HOSTS_ENV)
    if hosts:
        ctl = os.environ.get(SERVER_CMD_ENV)
        return "kazoo harness cluster: external ensemble %s; server control: %s" % (
            hosts,
            ctl or "none, tests that restart servers are skipped",
        )
    return "kazoo harness cluster: kazoo's own (ZK_HOSTS not set)"


def pytest_runtest_setup(item):
    _stop_asked.clear()
    cluster = _cluster[0]
    if cluster is not None and not all(s.running for s in cluster):
        # A test that stopped a server and failed before restarting it.
        cluster.start()
    if _trace is not None:
        _trace.test = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _stop_asked.is_set() and rep.when in ("setup", "call"):
        rep.outcome = "skipped"
        rep.longrepr = (str(item.path), item.location[1] or 0, "Skipped: " + _stop_reason[0])


def pytest_terminal_summary(terminalreporter):
    if _trace is None:
        return
    path = os.environ[TRACE_ENV]
    with _trace.lock:
        data = {
            "totals": dict(sorted(_trace.totals.items())),
            "by_test": {t: dict(sorted(c.items())) for t, c in sorted(_trace.by_test.items())},
        }
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    tr = terminalreporter
    tr.section("ZooKeeper wire trace (%s)" % path)
    for item, n in sorted(_trace.totals.items()):
        tr.write_line("%8d  %s" % (n, item))
