"""Rate limiter cost and exactness against a local Redis.

Prints (a) limiter checks per second from one client (RedisRateLimiter.hit in a loop,
a limit never reached), (b) raw Redis INCR the same way on the same client and pool, and
the ratio (target: limiter >= 70% of INCR), with the round trips per check counted twice:
on the server (INFO commandstats deltas: EVALSHA calls == checks, no other top-level
command) and in the client (requests written to the socket); and (c) admitted/attempted
when T threads x K attempts, then P processes x T threads x K attempts, hit one key at a
limit L (target: admitted == L, zero over-admission).

    .venv/bin/python bench/ratelimit.py [--checks 20000] [--threads 16] [--attempts 25] [--processes 4] [--limit 100]
                                        [--rounds 3] [--private-redis]

REDIS_URL (default redis://127.0.0.1:6379/3) names the database; the benchmark FLUSHes it
before and after. INFO commandstats is server-wide: on a Redis other clients use, the
server-side count includes their commands; --private-redis starts a throwaway redis-server
(database 3) so that EVALSHA calls == checks can be checked exactly. The four throughput
loops run interleaved in blocks, so a change of load on the machine affects them alike.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/3"
WINDOW_SECONDS = 60
# Script-internal commands of the sliding log (and the hot path) show up in commandstats too; they are
# not round trips. Everything else that moves during a measured loop would be one.
SCRIPT_INTERNAL = {"time", "lindex", "lpop", "rpush", "rpop", "llen", "pexpire", "get", "mget"}


def configure(workdir: str) -> None:
    """Django settings for ragsecure.redis_gate: local settings, REDIS_URL, var and secrets in a temp dir."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "ragsecure.settings.local"
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["RAGSECURE_VAR_DIR"] = workdir
    os.environ["RAGSECURE_SECRETS_DIR"] = f"{workdir}/secrets"
    os.environ["RAGSECURE_AUDIT_DIR"] = f"{workdir}/audit"
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    import django

    django.setup()


# ---------------------------------------------------------------------------
# Counting round trips
# ---------------------------------------------------------------------------


class SentCounter:
    """Counts requests the client writes to Redis (each non-pipelined request is one round trip)."""

    def __init__(self) -> None:
        from redis.connection import AbstractConnection

        self.count = 0
        self._original = AbstractConnection.send_packed_command
        counter = self

        def send_packed_command(connection, command, check_health=True):
            counter.count += 1
            return counter._original(connection, command, check_health)

        AbstractConnection.send_packed_command = send_packed_command


def command_stats(client) -> dict[str, tuple[int, int]]:
    """{command: (calls, usec)} from INFO commandstats (server-wide)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): (int(values["calls"]), int(values["usec"])) for name, values in stats.items()}


def stats_delta(before: dict, after: dict) -> dict[str, tuple[int, int]]:
    """{command: (calls, usec)} that moved between two snapshots, INFO itself left out."""
    delta = {}
    for name, (calls, usec) in after.items():
        old_calls, old_usec = before.get(name, (0, 0))
        if calls != old_calls and name != "info":
            delta[name] = (calls - old_calls, usec - old_usec)
    return delta


# ---------------------------------------------------------------------------
# (a), (b): throughput from one client
# ---------------------------------------------------------------------------


class Loop:
    """One measured call: time, errors, client requests and server-side commands, summed over its blocks."""

    def __init__(self, label: str, command: str, call) -> None:
        self.label, self.command, self.call = label, command, call
        self.checks = self.errors = self.sent = 0
        self.elapsed = 0.0
        self.block_seconds: list[float] = []
        self.server: dict[str, list[int]] = {}

    def block(self, size: int, client, counter: SentCounter) -> None:
        from redis.exceptions import RedisError

        from ragsecure.redis_gate import RedisUnavailable, redis_gate

        redis_gate.reset()
        call, errors = self.call, 0
        before = command_stats(client)
        sent_before = counter.count
        started = time.perf_counter()
        for _ in range(size):
            try:
                call()
            except (RedisUnavailable, RedisError):
                errors += 1
        self.block_seconds.append(time.perf_counter() - started)
        self.elapsed += self.block_seconds[-1]
        self.sent += counter.count - sent_before
        for name, (calls, usec) in stats_delta(before, command_stats(client)).items():
            totals = self.server.setdefault(name, [0, 0])
            totals[0] += calls
            totals[1] += usec
        self.checks += size
        self.errors += errors

    @property
    def rate(self) -> float:
        return self.checks / self.elapsed

    @property
    def us(self) -> float:
        return self.elapsed / self.checks * 1e6

    def top_level(self) -> dict[str, int]:
        """Commands the server received from clients during the blocks (script-internal ones left out)."""
        return {name: calls for name, (calls, _) in self.server.items() if name not in SCRIPT_INTERNAL}

    def server_us(self) -> float:
        calls, usec = self.server.get(self.command, (0, 0))
        return usec / calls if calls else float("nan")

    def report(self) -> None:
        print(f"{self.label:>34}: {self.checks} in {self.elapsed:5.2f} s = {self.rate:>7,.0f}/s ({self.us:6.1f} us each, "
              f"server {self.server_us():5.1f} us); errors {self.errors}; requests/check: client {self.sent / self.checks:.3f}, "
              f"server {sum(self.top_level().values()) / self.checks:.3f}")


def per_call_us(call, samples: int = 20_000) -> float:
    started = time.perf_counter()
    for _ in range(samples):
        call()
    return (time.perf_counter() - started) / samples * 1e6


def throughput(args, counter: SentCounter) -> tuple[Loop, Loop, float, bool]:
    """(a) and (b): the limiter and raw INCR (plus reference loops), interleaved in blocks on one client."""
    from accounts import revocation
    from accounts.ratelimit import SLIDING_LOG_SHA, RateDecision, redis_limiter, run_script
    from ragsecure.redis_gate import redis_client, redis_gate

    client = redis_client()
    window_ms = WINDOW_SECONDS * 1000
    never = 10**9  # a limit the loops never reach: every check admits and logs

    # The authenticated hot path: revocation markers, cached state (rpm never reached) and the limit in one script.
    user = 999_999
    hot_keys = [revocation.warm_key(user), revocation.jti_key(user, "j"), revocation.family_key(user, "f"),
                revocation.state_key(user), revocation.version_key(user), f"rs:{{u:{user}}}:rlog"]
    client.set(hot_keys[0], b"1")
    # The state entry as the product writes it: an active user at token generation 0.
    client.set(hot_keys[3], json.dumps({"ver": 0, "rpm": never, "active": True, "gen": 0, "state": "{}"}))

    hot_args = ("", window_ms, never, 0)

    def hot() -> list:
        return redis_gate.run(lambda c: run_script(c, revocation.HOT_PATH_SHA, revocation.HOT_PATH_LUA, len(hot_keys),
                                                   (*hot_keys, *hot_args)))

    sliding_sha = SLIDING_LOG_SHA
    floor_sha = client.script_load("return 1")
    limiter = Loop("limiter hit()", "evalsha",
                   lambda: redis_limiter.hit("rs:{bench:a}:rlog", limit=never, window_seconds=WINDOW_SECONDS))
    raw = Loop("raw INCR (same client, pool)", "incr", lambda: client.execute_command("INCR", "rs:{bench:b}:incr"))
    loops = [
        limiter,
        raw,
        Loop("INCR through redis_gate", "incr", lambda: redis_gate.run(lambda c: c.execute_command("INCR", "rs:{bench:c}:incr"))),
        Loop("bare EVALSHA, limiter script", "evalsha",
             lambda: client.execute_command("EVALSHA", sliding_sha, 1, "rs:{bench:d}:rlog", "", window_ms, 1_000_000)),
        Loop("EVALSHA 'return 1', same args", "evalsha",
             lambda: client.execute_command("EVALSHA", floor_sha, 1, "rs:{bench:e}:x", "", window_ms, 1_000_000)),
        Loop("hot path (token check + limit)", "evalsha", hot),
    ]
    for loop in loops:  # warm-up: script load (SCRIPT LOAD after a NOSCRIPT), pool connection, caches
        for _ in range(500):
            loop.call()
    assert len(hot()) == 6, "the hot-path script did not count the request"
    connected = int(client.info("clients")["connected_clients"])
    blocks = 20
    for _ in range(blocks):  # interleaved, so a load change on the machine hits every loop alike
        for loop in loops:
            loop.block(args.checks // blocks, client, counter)
    for loop in loops:
        loop.report()

    # Each limiter block ran right beside an INCR block: the median of those paired ratios is what a burst of
    # load on the machine (which slows whichever loop it lands on) moves least.
    ratio = statistics.median(raw_s / limiter_s for limiter_s, raw_s in zip(limiter.block_seconds, raw.block_seconds, strict=True))
    gated, bare, floor, hot_path = loops[2:]
    print(f"limiter / raw INCR: {ratio:.1%} median of {blocks} paired blocks (target >= 70%; all blocks together "
          f"{limiter.rate / raw.rate:.1%}); limiter / INCR through redis_gate: {limiter.rate / gated.rate:.1%}; "
          f"hot path / raw INCR: {hot_path.rate / raw.rate:.1%}")

    exclusive = limiter.top_level() == {"evalsha": limiter.checks}
    one_trip = limiter.sent == limiter.checks and hot_path.sent == hot_path.checks
    print(f"round trips per check: client {limiter.sent} requests for {limiter.checks} checks; server (INFO commandstats deltas) "
          f"{limiter.top_level()} -> {'EVALSHA calls == checks' if exclusive else 'MISMATCH'}")
    if not exclusive:
        print(f"  ({connected} clients connected: commandstats is server-wide and includes other clients' commands; "
              f"--private-redis gives an exact server-side count)")
    inner = {name: round(calls / limiter.checks, 2) for name, (calls, _) in limiter.server.items() if name in SCRIPT_INTERNAL}
    print(f"  commands inside the limiter script, per check (not round trips): {inner}")

    # Where the time goes, per check (differences of the interleaved loops above).
    print(f"where a check's {limiter.us:.0f} us go, vs INCR {raw.us:.0f} us: EVALSHA call with 6 arguments and a Lua run "
          f"+{floor.us - raw.us:.0f} us (server {floor.server_us():.1f} us vs INCR {raw.server_us():.1f} us); "
          f"the sliding-log body +{bare.us - floor.us:.0f} us (server {bare.server_us():.1f} us); "
          f"hit()'s Python around it +{limiter.us - bare.us:.0f} us")
    gate_us = per_call_us(lambda: redis_gate.run(lambda c: None))
    print(f"  pieces of hit()'s Python: redis_gate.run + get_redis_connection {gate_us:.1f} us, "
          f"RateDecision.from_script {per_call_us(lambda: RateDecision.from_script(60_000 << 21 | 5 << 1 | 1, 7)):.1f} us")
    return limiter, raw, ratio, one_trip and (exclusive or not args.private_redis)


# ---------------------------------------------------------------------------
# (c): admitted / attempted under concurrency
# ---------------------------------------------------------------------------


def hammer(key: str, limit: int, attempts: int, threads: int, barrier) -> tuple[int, int, int]:
    """`threads` threads x `attempts` hits on `key`, started together; return (admitted, denied, errors)."""
    from accounts.ratelimit import redis_limiter
    from ragsecure.redis_gate import RedisUnavailable

    totals = [0, 0, 0]
    lock = threading.Lock()

    def run() -> None:
        counts = [0, 0, 0]
        barrier.wait()
        for _ in range(attempts):
            try:
                decision = redis_limiter.hit(key, limit=limit, window_seconds=WINDOW_SECONDS)
            except RedisUnavailable:
                counts[2] += 1
                continue
            counts[0 if decision.allowed else 1] += 1
        with lock:
            for index in range(3):
                totals[index] += counts[index]

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return totals[0], totals[1], totals[2]


def process_main(workdir: str, key: str, limit: int, attempts: int, threads: int, barrier, results) -> None:
    configure(workdir)
    local = threading.Barrier(threads, action=barrier.wait)  # every thread of every process starts together
    results.put(hammer(key, limit, attempts, threads, local))


def verdict(limit: int, attempted: int, admitted: int, errors: int, logged: int) -> bool:
    """Exact: the log holds min(L, attempted) and every logged request was answered "allowed". A check that
    timed out (error) may have been logged without its answer arriving, so then only "never more than L" holds."""
    if errors:
        return logged <= limit and admitted <= logged
    return logged == admitted == min(limit, attempted)


def concurrency(args, workdir: str) -> bool:
    from ragsecure.redis_gate import redis_client, redis_gate

    client = redis_client()
    exact = True
    print(f"concurrency: limit L={args.limit}, window {WINDOW_SECONDS} s, {args.rounds} rounds each, a fresh key per round")
    for round_ in range(args.rounds):
        redis_gate.reset()
        key = f"rs:{{bench:t{round_}}}:rlog"
        admitted, denied, errors = hammer(key, args.limit, args.attempts, args.threads, threading.Barrier(args.threads))
        attempted = args.threads * args.attempts
        logged = client.llen(key)
        ok = verdict(args.limit, attempted, admitted, errors, logged)
        exact &= ok
        print(f"  threads   {args.threads:>2} x {args.attempts} attempts: admitted {admitted}/{attempted} (denied {denied}, "
              f"errors {errors}), log holds {logged} -> {'exact' if ok else 'WRONG'}")
    context = multiprocessing.get_context("spawn")
    for round_ in range(args.rounds):
        key = f"rs:{{bench:p{round_}}}:rlog"
        barrier = context.Barrier(args.processes)
        results = context.Queue()
        processes = [
            context.Process(target=process_main, args=(workdir, key, args.limit, args.attempts, args.threads, barrier, results))
            for _ in range(args.processes)
        ]
        for process in processes:
            process.start()
        collected = [results.get(timeout=300) for _ in processes]
        for process in processes:
            process.join()
        admitted, denied, errors = (sum(part[index] for part in collected) for index in range(3))
        attempted = args.processes * args.threads * args.attempts
        logged = client.llen(key)
        ok = verdict(args.limit, attempted, admitted, errors, logged)
        exact &= ok
        print(f"  processes {args.processes} x {args.threads} threads x {args.attempts} attempts: admitted {admitted}/{attempted} "
              f"(denied {denied}, errors {errors}), log holds {logged} -> {'exact' if ok else 'WRONG'}")
    return exact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=20_000, help="checks per throughput loop")
    parser.add_argument("--threads", type=int, default=16, help="threads per process in (c); at most 64 (the pool's size)")
    parser.add_argument("--attempts", type=int, default=25, help="attempts per thread in (c)")
    parser.add_argument("--processes", type=int, default=4, help="processes in the multi-process part of (c)")
    parser.add_argument("--limit", type=int, default=100, help="the limit L in (c)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each part of (c)")
    parser.add_argument("--private-redis", action="store_true",
                        help="start a throwaway redis-server (no other clients: exact server-side command counts)")
    args = parser.parse_args()
    private = None
    if args.private_redis:
        sys.path.insert(0, str(ROOT))
        from tests.services import start_redis_server

        private, url = start_redis_server()
        os.environ["REDIS_URL"] = url.rsplit("/", 1)[0] + "/3"
    workdir = tempfile.mkdtemp(prefix="ragsecure-bench-rl-")
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if private is not None:
            private.terminate()
            private.wait(timeout=10)


def run(args, workdir: str) -> int:
    configure(workdir)
    from django.conf import settings

    from ragsecure.redis_gate import redis_client

    client = redis_client()
    client.flushdb()
    counter = SentCounter()
    server = client.info("server")
    print(f"Redis {server['redis_version']} at {settings.REDIS_URL}{' (private)' if args.private_redis else ''}; "
          f"redis-py {__import__('redis').__version__}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    try:
        limiter, raw, ratio, one_trip = throughput(args, counter)
        exact = concurrency(args, workdir)
    finally:
        client.flushdb()
    print(f"summary: limiter {limiter.rate:,.0f}/s, raw INCR {raw.rate:,.0f}/s, "
          f"ratio {ratio:.1%} (median of paired blocks; {'meets' if ratio >= 0.7 else 'MISSES'} 70%); "
          f"{'one round trip per check' if one_trip else 'NOT one round trip per check'}; "
          f"{'zero over-admission' if exact else 'OVER/UNDER-ADMISSION'}")
    return 0 if exact and one_trip else 1


if __name__ == "__main__":
    sys.exit(main())
