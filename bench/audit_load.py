"""Audit cost under load: gunicorn (4 workers) on PostgreSQL, mixed requests, audit on vs off.

Prints requests/s of each run, the cost of auditing in % (the median of alternating off/on
rounds), the CPU time the server, the host audit writer and PostgreSQL spent per request in
each run (a figure other load on the machine does not move), whether audit entries equal
requests, and the verify_audit_chain result. Audit on runs as `make run` does: with the host
audit writer (`--direct` also measures each worker committing its own entries). `--floor` also measures,
with the audit off, the least any design can pay for an entry durable before its response leaves: a fixed
line sent to a bare append-fdatasync-answer process and waited for (`bench/handoff_floor.py`); and the audit
with that process standing in for the writer ("audit, file store": every entry built, sealed and made durable
in a file, none stored in the database), which separates what the workers pay from what storing costs.

    .venv/bin/python bench/audit_load.py [--requests 20000] [--clients 16] [--rounds 3] [--direct] [--floor] [--database-url postgres://...]

Without --database-url (or DATABASE_URL) it uses the local PostgreSQL server on
127.0.0.1:5432 and a database named ragsecure_bench, created when missing.
"""

import argparse
import http.client
import json
import math
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PASSWORD = "bench-password-0123456789"
TOKENS_FOR = 120  # seconds a request mix's tokens are used for (access tokens live 5 minutes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ensure_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def request(port: int, method: str, path: str, headers: dict, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Host": "localhost", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def obtain(port: int, username: str, scopes: list[str] | None = None) -> str:
    body = {"username": username, "password": PASSWORD}
    if scopes is not None:
        body["scopes"] = scopes
    status, payload = request(port, "POST", "/api/v1/auth/token/", {"Content-Type": "application/json"}, json.dumps(body).encode())
    if status != 200:
        raise SystemExit(f"login failed: {status} {payload[:200]!r}")
    return json.loads(payload)["access"]


def build_mix(port: int) -> list[tuple[str, str, dict, set[int]]]:
    """(method, path, headers, expected statuses) — one cycle of the request mix: 200, 401, 403, 404 and 429."""
    full = obtain(port, "bench-a")
    narrow = obtain(port, "bench-b", scopes=[])
    throttled = obtain(port, "bench-c")
    bearer = {"Authorization": f"Bearer {full}"}
    return [
        ("GET", "/api/v1/auth/me/", bearer, {200}),
        ("GET", "/healthz", {}, {200}),
        ("GET", "/api/v1/documents/", {"Authorization": f"Bearer {narrow}"}, {403}),
        ("GET", "/api/v1/auth/me/", {"Authorization": f"Bearer {throttled}"}, {200, 429}),
        ("GET", "/api/v1/auth/me/", {"Authorization": "Bearer not-a-token"}, {401}),
        ("GET", "/api/v1/auth/me/", {}, {401}),
        ("GET", "/api/v1/no-such-endpoint/", bearer, {404}),
    ]


def worker(port: int, mix: list, count: int, offset: int, results, ready) -> None:
    statuses: dict[int, int] = {}
    mismatches = 0
    ready.wait()  # every client starts together, once all are running
    for index in range(count):
        method, path, headers, expected = mix[(index + offset) % len(mix)]
        status, _ = request(port, method, path, headers)
        statuses[status] = statuses.get(status, 0) + 1
        mismatches += status not in expected
    results.put((statuses, mismatches))


def load(port: int, mix: list, total: int, clients: int) -> tuple[float, dict, int]:
    results = multiprocessing.Queue()
    ready = multiprocessing.Barrier(clients + 1)
    share = total // clients
    processes = [
        multiprocessing.Process(target=worker, args=(port, mix, share + (1 if index < total % clients else 0), index, results, ready))
        for index in range(clients)
    ]
    for process in processes:
        process.start()
    ready.wait()  # the clock starts when the clients do, not while they are being forked
    started = time.perf_counter()
    collected = [results.get() for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    statuses: dict[int, int] = {}
    for partial, _ in collected:
        for status, number in partial.items():
            statuses[status] = statuses.get(status, 0) + number
    return elapsed, statuses, sum(mismatch for _, mismatch in collected)


def serve(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "ragsecure.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/healthz", {})[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def audit_count(env: dict) -> int:
    """Audit entries stored so far (asked of PostgreSQL directly: a management command takes seconds to start)."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
        return connection.execute("SELECT count(*) FROM audit_auditentry").fetchone()[0]


def flush_redis(url: str) -> None:
    """Each run starts with empty rate-limit logs (the previous run's requests would still be in the window)."""
    import redis

    redis.Redis.from_url(url).flushdb()


def _proc_stats() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds used) of every process this user may read."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                raw = handle.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(entry)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / ticks)
    return stats


def machine_idle() -> tuple[float, float]:
    """(idle seconds, total seconds) of every core since boot, from /proc/stat (I/O wait counts as idle)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (fields[3] + fields[4]) / ticks, sum(fields[:8]) / ticks


def server_cpu(server_pid: int) -> tuple[float, float]:
    """CPU seconds used so far by the gunicorn process tree, and by every PostgreSQL process (the database's share)."""
    stats = _proc_stats()
    tree, server, database = {server_pid}, 0.0, 0.0
    for _ in range(3):  # master -> workers (-> any helper they fork)
        tree |= {pid for pid, (parent, _, _) in stats.items() if parent in tree}
    for pid, (_, name, seconds) in stats.items():
        if pid in tree:
            server += seconds
        elif name.startswith("postgres"):
            database += seconds
    return server, database


def start_listener(env: dict, command: list[str], name: str) -> subprocess.Popen:
    """Start a process that prints "listening" once its socket is ready; stop the benchmark if it never does."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if "listening" not in (process.stdout.readline() or ""):
        process.kill()
        raise SystemExit(f"{name} did not start")
    return process


def start_writer(env: dict, path: str) -> subprocess.Popen:
    """The host audit writer, as `make run` starts it beside gunicorn."""
    return start_listener(env, [PYTHON, "manage.py", "audit_writer", "--socket", path], "the audit writer")


def start_echo(env: dict, path: str) -> subprocess.Popen:
    """The bare durable hand-off of the floor measurement (no audit logic; see bench/handoff_floor.py)."""
    command = [PYTHON, "-m", "bench.handoff_floor", path, str(Path(path).with_suffix(".jsonl"))]
    return start_listener(env, command, "the hand-off echo")


def load_file_store(env: dict, journal: Path) -> bool:
    """Load the entries the file-store run made durable in the echo's file into the database (through the spool and
    replay_audit_spool), so that verify_audit_chain covers them too; True if every line loaded."""
    lines = journal.read_text(encoding="ascii").splitlines()
    spool = Path(env["RAGSECURE_AUDIT_DIR"]) / "spool.jsonl"
    spool.parent.mkdir(parents=True, exist_ok=True)
    with open(spool, "a", encoding="ascii") as handle:
        handle.write("".join(line + "\n" for line in lines))
    journal.unlink()
    output = manage(env, "replay_audit_spool")
    print(f"file store: {output.strip()} (of {len(lines)} in its file)")
    return output.startswith(f"{len(lines)} spooled entr")


@dataclass
class Variant:
    """One server configuration under test, with its running processes and what its measured loads added up to."""

    label: str
    env: dict
    port: int
    server: subprocess.Popen
    helper: subprocess.Popen | None  # the audit writer, or the hand-off echo
    echo: bool
    audited: bool  # its entries are stored in the database (counted around each load)
    mix: list = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    database_cpu: float = 0.0
    helper_cpu: float = 0.0
    idle: float = 0.0
    total: float = 0.0
    mismatches: int = 0
    statuses: dict = field(default_factory=dict)
    entries: int = 0


def start(env: dict, settings_module: str, args, label: str, writer_socket: str = "", echo_socket: str = "") -> Variant:
    """Start a configuration's server (and its writer or echo) and warm it up: imports, connections, caches."""
    env = {**env, "DJANGO_SETTINGS_MODULE": settings_module, "RAGSECURE_AUDIT_WRITER_SOCKET": writer_socket}
    port = free_port()
    if echo_socket:
        # The bare hand-off's middleware, or the audit itself when the echo stands in for the writer (it answers D).
        env["RAGSECURE_BENCH_HANDOFF_SOCKET"] = echo_socket
        helper = start_echo(env, echo_socket)
    else:
        helper = start_writer(env, writer_socket) if writer_socket else None
    try:
        server = serve(env, port, args.workers, args.threads)
    except BaseException:
        if helper is not None:
            helper.kill()
        raise
    audited = settings_module == "ragsecure.settings.local" and not echo_socket
    variant = Variant(label, env, port, server, helper, bool(echo_socket), audited)
    try:
        variant.mix = build_mix(port)
        load(port, variant.mix, min(600, args.requests), args.clients)
    except BaseException:
        finish(variant)
        raise
    return variant


def measure(variant: Variant, requests: int, clients: int) -> float:
    """Send `requests` to the variant and add what it took to its totals; returns its requests/s in this load."""
    server_before, database_before = server_cpu(variant.server.pid)
    helper_before = server_cpu(variant.helper.pid)[0] if variant.helper is not None else 0.0
    entries_before = audit_count(variant.env) if variant.audited else 0
    idle_before, total_before = machine_idle()
    elapsed, statuses, mismatches = load(variant.port, variant.mix, requests, clients)
    idle_after, total_after = machine_idle()
    if variant.audited:  # every entry is durable before its response leaves: all of them are stored by now
        variant.entries += audit_count(variant.env) - entries_before
    server_after, database_after = server_cpu(variant.server.pid)
    if variant.helper is not None:
        variant.helper_cpu += server_cpu(variant.helper.pid)[0] - helper_before
    variant.cpu += server_after - server_before
    variant.database_cpu += database_after - database_before
    variant.idle += idle_after - idle_before
    variant.total += total_after - total_before
    variant.requests += requests
    variant.seconds += elapsed
    variant.mismatches += mismatches
    for status, number in statuses.items():
        variant.statuses[status] = variant.statuses.get(status, 0) + number
    return requests / elapsed


def finish(variant: Variant) -> None:
    stop(variant.server)
    if variant.helper is not None:
        stop(variant.helper)
        if not variant.echo:
            print(f"{variant.label:>10}: {variant.helper.stdout.read().strip()}")


def report(variant: Variant) -> dict:
    """Print the variant's totals; returns its rate and CPU per request (server, its writer or echo, PostgreSQL)."""
    requests = max(variant.requests, 1)
    rate = variant.requests / variant.seconds
    cpu_ms = (variant.cpu + variant.helper_cpu + variant.database_cpu) * 1000 / requests
    if variant.helper is not None:
        name = "the hand-off echo" if variant.echo else "the audit writer"
        print(f"{variant.label:>10}: {name} used {variant.helper_cpu * 1000 / requests:.2f} ms CPU per request")
    # Cores idle near 0 means the load was bound by the cores, which everything (clients included) shares.
    idle = variant.idle * 100 / max(variant.total, 1e-9)
    print(f"{variant.label:>10}: {variant.requests} requests in {variant.seconds:.2f} s = {rate:,.0f} req/s; server + PostgreSQL CPU "
          f"{cpu_ms:.2f} ms per request (PostgreSQL {variant.database_cpu * 1000 / requests:.2f} ms); statuses "
          f"{dict(sorted(variant.statuses.items()))}; unexpected statuses {variant.mismatches}; cores idle {idle:.1f}% of the run")
    return {"rate": rate, "cpu_ms": cpu_ms}


def run(env: dict, settings_module: str, args, label: str, writer_socket: str = "", echo_socket: str = "") -> dict:
    """One configuration on its own: start, warm up, send --requests, stop."""
    flush_redis(env["REDIS_URL"])
    variant = start(env, settings_module, args, label, writer_socket, echo_socket)
    try:
        measure(variant, args.requests, args.clients)
    finally:
        finish(variant)
    return {**report(variant), "entries": variant.entries, "audited": variant.audited}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--rounds", type=int, default=3, help="alternating off/on rounds; the medians are reported")
    parser.add_argument("--slices", type=int, default=0,
                        help="instead of rounds, run every configuration side by side and alternate slices of the load")
    parser.add_argument("--direct", action="store_true", help="also measure audit on without the host audit writer")
    parser.add_argument("--floor", action="store_true", help="also measure a bare durable hand-off (audit off): the least any design pays")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ragsecure_bench"))
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        raise SystemExit("This benchmark runs on PostgreSQL: pass --database-url postgres://...")
    ensure_database(args.database_url)
    workdir = tempfile.mkdtemp(prefix="ragsecure-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_DEBUG": "0",
        "RAGSECURE_VAR_DIR": workdir,
        "RAGSECURE_SECRETS_DIR": f"{workdir}/secrets",
        "RAGSECURE_AUDIT_DIR": f"{workdir}/audit",
        "PYTHONWARNINGS": "ignore::UserWarning",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        "DJANGO_SETTINGS_MODULE": "ragsecure.settings.local",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "flush", "--noinput")
    manage(env, "bootstrap")
    for name in ("bench-a", "bench-b", "bench-c"):
        scopes = ["--scope", "query:read", "--scope", "documents:read"]
        manage({**env, "RAGSECURE_PASSWORD": PASSWORD}, "create_api_user", name, "--tier", "enterprise", *scopes)
    # bench-a and bench-b are never throttled; bench-c's tier admits 5 requests a minute, so most of its get 429.
    code = (
        "from accounts.models import Tier, User; limits = dict(llm_tokens_per_day=1000, max_top_k=5, max_document_bytes=1000, "
        "retrieved_bytes_per_hour=1000); open_tier = Tier.objects.create(name='bench-open', requests_per_minute=10**9, **limits); "
        "tight = Tier.objects.create(name='bench-throttled', requests_per_minute=5, **limits); "
        "User.objects.filter(username__in=['bench-a', 'bench-b']).update(tier=open_tier); "
        "User.objects.filter(username='bench-c').update(tier=tight)"
    )
    manage(env, "shell", "--no-imports", "-c", code)
    print(f"PostgreSQL, gunicorn {args.workers} workers x {args.threads} threads (gthread), {args.clients} concurrent clients, "
          f"{os.cpu_count()} cores")
    if args.slices:
        return paired(env, args, workdir)
    specs = configurations(args, workdir)
    costs: dict[str, list[float]] = {label: [] for label, *_ in specs[1:]}
    cpu_costs, entries_ok = [], True
    # Rounds alternate off and on, so drift on the machine (other load, PostgreSQL's own housekeeping) falls on
    # both; the medians of the rounds are the figures.
    for number in range(1, args.rounds + 1):
        print(f"round {number} of {args.rounds}")
        results: dict[str, dict] = {}
        for label, module, writer_socket, echo_socket in specs:
            results[label] = result = run(env, module, args, label, writer_socket, echo_socket)
            if label != "audit off":
                costs[label].append(cost(result["rate"], results["audit off"]["rate"]))
            if result["audited"]:
                entries_ok &= result["entries"] == args.requests
            if label == "file store":
                entries_ok &= load_file_store(env, Path(echo_socket).with_suffix(".jsonl"))
        on, off = results["audit on"], results["audit off"]
        cpu_costs.append((on["cpu_ms"] / off["cpu_ms"] - 1) * 100)
        print(f"  round {number}: audit cost {costs['audit on'][-1]:.1f}% of throughput, +{cpu_costs[-1]:.1f}% CPU per request; "
              f"audit entries {on['entries']} for {args.requests} requests")
    runs = ", ".join(f"{value:.1f}" for value in costs["audit on"])
    print(f"audit cost: {statistics.median(costs['audit on']):.1f}% of throughput, median of {args.rounds} round(s) ({runs}) "
          f"(target <= 15%); CPU per request (server + PostgreSQL, independent of other load on the machine): "
          f"+{statistics.median(cpu_costs):.1f}%")
    for label, description in (
        ("no writer", "audit cost without the host writer (each worker commits its own entries)"),
        ("floor", "bare durable hand-off, no audit at all (the floor of any design)"),
        ("file store", "audit with a file store (entries built, sealed, fsynced by the same bare process; none in the database)"),
    ):
        if label in costs:
            print(f"{description}: {statistics.median(costs[label]):.1f}% of throughput "
                  f"({', '.join(f'{value:.1f}' for value in costs[label])})")
    print(f"audit entries equal requests in every audited run: {'yes, none lost' if entries_ok else 'NO: MISMATCH'}")
    return 0 if entries_ok and verify(env) else 1


def configurations(args, workdir: str) -> list[tuple[str, str, str, str]]:
    """(label, settings module, writer socket, echo socket) of each configuration measured, audit off first."""
    specs = [("audit off", "bench.settings_audit_off", "", "")]
    if args.direct:
        specs.append(("no writer", "ragsecure.settings.local", "", ""))
    if args.floor:
        specs.append(("floor", "bench.settings_handoff_floor", "", f"{workdir}/run/handoff-echo.sock"))
        file_store = f"{workdir}/run/file-store.sock"
        specs.append(("file store", "ragsecure.settings.local", file_store, file_store))
    specs.append(("audit on", "ragsecure.settings.local", f"{workdir}/run/audit-writer.sock", ""))
    return specs


def cost(rate: float, off_rate: float) -> float:
    """What a configuration costs, in % of the throughput with the audit off."""
    return (1 - rate / off_rate) * 100


def verify(env: dict) -> bool:
    verdict = subprocess.run([PYTHON, "manage.py", "verify_audit_chain"], cwd=ROOT, env=env, capture_output=True, text=True)
    print(f"verify_audit_chain: exit {verdict.returncode}: {(verdict.stdout or verdict.stderr).strip()}")
    return verdict.returncode == 0


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median (order statistics; the binomial tails at a half): the slices'
    costs scatter too widely on a shared machine for any one slice, or a mean, to stand for the cost."""
    ordered, count = sorted(values), len(values)
    tail, below = (1 - confidence) / 2, 0.0
    for index in range(count // 2):  # the largest index with P(Binomial(count, 1/2) <= index) <= tail
        below += math.comb(count, index) / 2**count
        if below > tail:
            return (ordered[index - 1], ordered[count - index]) if index else (ordered[0], ordered[-1])
    return ordered[0], ordered[-1]


def paired(env: dict, args, workdir: str) -> int:
    """--slices: every configuration's server runs side by side (idle while another one is measured), and each slice
    sends --requests/--slices to each in turn, forwards in one slice and backwards in the next. The machine's drift
    (its speed changed by a fifth within minutes on some days) then falls on the configurations of a slice alike,
    where rounds of minutes each see a different machine. The cost is the median of the slices' costs."""
    flush_redis(env["REDIS_URL"])
    specs = configurations(args, workdir)
    variants: list[Variant] = []
    share = args.requests // args.slices
    rates: dict[str, list[float]] = {label: [] for label, *_ in specs}
    try:
        for label, module, writer_socket, echo_socket in specs:
            variants.append(start(env, module, args, label, writer_socket, echo_socket))
        tokens_from = time.monotonic()
        for number in range(args.slices):
            if time.monotonic() - tokens_from > TOKENS_FOR:
                # A run outlasts the access tokens: fresh ones (after clearing the limiters, which count the logins).
                flush_redis(env["REDIS_URL"])
                for variant in variants:
                    variant.mix = build_mix(variant.port)
                tokens_from = time.monotonic()
            for variant in variants if number % 2 == 0 else variants[::-1]:
                rates[variant.label].append(measure(variant, share, args.clients))
            off = rates["audit off"][-1]
            print(f"slice {number + 1} of {args.slices}: " + ", ".join(
                f"{label} {rate[-1]:,.0f} req/s" + ("" if label == "audit off" else f" ({cost(rate[-1], off):.1f}%)")
                for label, rate in rates.items()
            ), flush=True)
    finally:
        for variant in variants:
            finish(variant)
    totals = {variant.label: report(variant) for variant in variants}
    entries_ok = True
    for variant in variants:
        if variant.audited:
            print(f"{variant.label}: {variant.entries} audit entries stored for {variant.requests} requests")
            entries_ok &= variant.entries == variant.requests
    for label, _, _, echo_socket in specs:
        if label == "file store":
            entries_ok &= load_file_store(env, Path(echo_socket).with_suffix(".jsonl"))
    for label in rates:
        if label == "audit off":
            continue
        costs = [cost(rate, off) for rate, off in zip(rates[label], rates["audit off"], strict=True)]
        overall = cost(totals[label]["rate"], totals["audit off"]["rate"])
        low, high = median_interval(costs)
        print(f"{label}: cost {statistics.median(costs):.1f}% of throughput, median of {len(costs)} slices (95% interval "
              f"{low:.1f} to {high:.1f}; all slices together {overall:.1f}%); CPU per request "
              f"{totals[label]['cpu_ms']:.2f} ms against {totals['audit off']['cpu_ms']:.2f} ms"
              + (" (target <= 15%)" if label == "audit on" else ""))
    print(f"audit entries equal requests: {'yes, none lost' if entries_ok else 'NO: MISMATCH'}")
    return 0 if entries_ok and verify(env) else 1


if __name__ == "__main__":
    sys.exit(main())
