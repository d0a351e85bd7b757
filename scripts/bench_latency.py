"""Latency of one finding on an idle worker, run by `scripts/bench` (and `scripts/bench --latency`).

1. Starts `rectify worker` (long-polling, as deployed) and waits for its first poll.
2. N times (default 50), kinds in turn: creates one violation, sends its one finding, and waits
   for the worker's `job ended` log line (written once the fix is verified and the outcome and
   audit record are durable). Enqueue → verified fix is the time from the send to that line; the
   next finding is sent only then, so the worker is idle each time. Prints p50 / p99 / max.
3. Starts a second worker whose calls go through the logging proxy (scripts/fault_proxy.py, no
   faults), sends one finding to warm it up, then one finding of each kind, and prints each
   finding's calls in order, from the receive that returned it to the delete of its message, with
   when each started and how long it took: calls that overlap ran concurrently; the others run in
   sequence, and their number is the finding's critical path in calls.

Usage: bench_latency.py --rectify PATH [--n N]
Prints Markdown and writes the figures as JSON to .rectify-run/bench-latency.json.
"""

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import boto3

from bench_run import HOME, KINDS, REGION, new_vpc, prepare, violation

RUN = ".rectify-run"
DEADLINE_S = 60
DELETES = {"DeleteMessage", "DeleteMessageBatch"}


class Worker:
    """A long-polling `rectify worker`, its log lines read as they come."""

    def __init__(self, rectify, env):
        env = dict(env, RECTIFY_LOG_FORMAT="json", RECTIFY_LOG="warn,rectify::source::poll=info,rectify::reconcile=info")
        self.p = subprocess.Popen([rectify, "worker"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("polling")

    def _read(self):
        for line in self.p.stderr:
            self.lines.put((time.monotonic(), time.time(), line))
        self.lines.put((None, None, None))

    def wait_for(self, message):
        """Waits for the next log line with this message; returns (monotonic, unix time, fields)."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                t, unix, line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                sys.exit(f"the worker did not log {message!r} within {DEADLINE_S} s")
            if line is None:
                sys.exit(f"the worker exited ({self.p.wait()}) before it logged {message!r}")
            try:
                fields = json.loads(line)
            except ValueError:
                continue
            if fields.get("message") == message:
                return t, unix, fields

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def send(sqs, url, body):
    sqs.send_message(QueueUrl=url, MessageBody=body)


def latencies(rectify, n):
    env = prepare(rectify, "lat", n)
    s = boto3.Session(region_name=REGION)
    vpc = new_vpc(s)
    sqs = s.client("sqs")
    url = sqs.get_queue_url(QueueName="lat-events")["QueueUrl"]
    w = Worker(rectify, env)
    out = []
    try:
        for i in range(n):
            kind = KINDS[i % len(KINDS)]
            _, body = violation(s, vpc, HOME, kind, f"lat-{kind}-{i}")
            t = time.monotonic()
            send(sqs, url, body)
            ended, _, fields = w.wait_for("job ended")
            if fields.get("outcome") != "applied":
                sys.exit(f"finding {i} ({kind}) ended {fields.get('outcome')!r}, not applied: {fields}")
            out.append((kind, ended - t))
    finally:
        w.stop()
    return out


def critical_paths(rectify, moto):
    """One finding of each kind through the logging proxy: kind -> its calls in order."""
    env = prepare(rectify, "path", len(KINDS) + 1)
    s = boto3.Session(region_name=REGION)
    vpc = new_vpc(s)
    sqs = s.client("sqs")
    url = sqs.get_queue_url(QueueName="path-events")["QueueUrl"]
    log = os.path.join(RUN, "bench-latency-proxy.jsonl")
    if os.path.exists(log):
        os.remove(log)
    here = os.path.dirname(os.path.abspath(__file__))
    proxy = subprocess.Popen([sys.executable, os.path.join(here, "fault_proxy.py"), "--target", moto, "--log", log,
                              "--log-all"], stdout=subprocess.PIPE, text=True)
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{proxy.stdout.readline().strip()}"
    windows = {}
    try:
        w = Worker(rectify, env)
        try:
            # A first finding, not shown, reads the settings and takes the role's credentials:
            # the paths below are those of a worker that has (the settings are re-read when
            # older than their cache time, the credentials once an hour per account).
            for i, kind in enumerate(["warm-up", *KINDS]):
                _, body = violation(s, vpc, HOME, kind if kind != "warm-up" else "vpce", f"path-{kind}-{i}")
                sent = time.time()
                send(sqs, url, body)
                w.wait_for("job ended")
                # The message is deleted after the outcome is durable: wait for the delete too.
                deadline = time.monotonic() + DEADLINE_S
                while not any(e["action"] in DELETES and e["start"] >= sent for e in read(log)):
                    if time.monotonic() > deadline:
                        sys.exit(f"no delete of the {kind} finding's message within {DEADLINE_S} s")
                    time.sleep(0.02)
                if kind != "warm-up":
                    windows[kind] = (sent, time.time())
        finally:
            w.stop()
    finally:
        proxy.terminate()
        proxy.wait()
    entries = read(log)
    paths = {}
    for kind, (sent, done) in windows.items():
        # From the receive that returned the finding (it was waiting before the send) to the delete.
        calls = [e for e in entries if e["end"] >= sent and e["start"] <= done
                 and (e["action"] != "ReceiveMessage" or e.get("receipts"))]
        first = next(i for i, e in enumerate(calls) if e["action"] == "ReceiveMessage")
        last = max(i for i, e in enumerate(calls) if e["action"] in DELETES)
        paths[kind] = sorted(calls[first:last + 1], key=lambda e: e["start"])
    return paths


def read(log):
    try:
        with open(log) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def steps(calls):
    """Numbers each call with its step: a call that starts before every earlier call has ended
    shares that step (it ran concurrently); otherwise it starts the next one."""
    out, step, end = [], 0, None
    for e in calls:
        if end is None or e["start"] >= end:
            step += 1
            end = e["end"]
        else:
            end = max(end, e["end"])
        out.append(step)
    return out


S3_READS = {"policyStatus": "GetBucketPolicyStatus", "policy": "GetBucketPolicy", "acl": "GetBucketAcl",
            "ownershipControls": "GetBucketOwnershipControls", "location": "GetBucketLocation", "tagging": "GetBucketTagging"}


def name(e):
    a = e["action"]
    if a.startswith(("GET ", "PUT ", "HEAD ", "POST ", "DELETE ")):
        _, _, query = e.get("request", {}).get("path", "").partition("?")
        sub = query.split("&")[0].split("=")[0]
        a = S3_READS.get(sub, f"{a.split()[0]} ?{sub}") if e["service"] == "s3" and sub else a.split()[0]
    return f"{e['service']}:{a}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rectify", required=True)
    p.add_argument("--n", type=int, default=50)
    args = p.parse_args()
    moto = os.environ["AWS_ENDPOINT_URL"]
    os.makedirs(RUN, exist_ok=True)

    print(f"latency: {args.n} single findings on an idle worker, one at a time ...", flush=True)
    lat = latencies(args.rectify, args.n)
    ms = sorted(x * 1000 for _, x in lat)
    pct = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    by_kind = {k: sorted(x * 1000 for kk, x in lat if kk == k) for k in KINDS}
    print("critical path: one finding of each kind through the logging proxy ...", flush=True)
    paths = critical_paths(args.rectify, moto)

    figures = {
        "findings": len(ms), "p50_ms": round(pct(0.50), 1), "p99_ms": round(pct(0.99), 1), "max_ms": round(ms[-1], 1),
        "p50_ms_by_kind": {k: round(v[len(v) // 2], 1) for k, v in by_kind.items() if v},
        "critical_path": {},
    }
    print()
    print(f"Enqueue → verified fix, one finding at a time on an idle worker ({len(ms)} findings, kinds in turn):")
    print()
    print("| p50 | p99 | max | p50 by kind |")
    print("|---|---|---|---|")
    print(f"| {figures['p50_ms']} ms | {figures['p99_ms']} ms | {figures['max_ms']} ms | "
          + ", ".join(f"{k} {v} ms" for k, v in figures["p50_ms_by_kind"].items()) + " |")
    print()
    print("Critical path in calls (through the logging proxy, so each call also carries the proxy's cost):")
    print()
    print("| kind | calls | in sequence | sequence (‖ = ran concurrently with the call before) |")
    print("|---|---|---|---|")
    for kind, calls in paths.items():
        st = steps(calls)
        seq = ""
        for i, (e, s) in enumerate(zip(calls, st)):
            seq += ("" if i == 0 else (" ‖ " if st[i - 1] == s else " → ")) + name(e)
        figures["critical_path"][kind] = {
            "calls": len(calls), "sequential_steps": st[-1] if st else 0,
            "calls_in_order": [{"call": name(e), "step": s, "start_ms": round((e["start"] - calls[0]["end"]) * 1000, 1),
                                "took_ms": round((e["end"] - e["start"]) * 1000, 1)} for e, s in zip(calls, st)],
        }
        print(f"| {kind} | {len(calls)} | {st[-1] if st else 0} | {seq} |")
    print()
    for kind, calls in paths.items():
        print(f"{kind}: ms after the receive returned, step, took, call")
        for c in figures["critical_path"][kind]["calls_in_order"]:
            print(f"  {c['start_ms']:8.1f}  {c['step']:3d}  {c['took_ms']:6.1f}  {c['call']}")
    with open(os.path.join(RUN, "bench-latency.json"), "w") as f:
        json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
