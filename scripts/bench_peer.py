"""Cloud Custodian and rectify side by side on the same moto, run by `scripts/bench --peer`.

For each tool in turn, moto is reset and seeded with the same violations in one account: PER_KIND
(default 50) of each of the benchmark's four kinds (S3 bucket without a public access block,
security group with SSH open to 0.0.0.0/0, IAM user with an active access key, VPC endpoint with an
allow-all policy). Then the tool fixes them:

- Cloud Custodian (scripts/bench_peer/policy.yml, `custodian run`) fixes the three kinds it has an
  action for; it has none that rewrites a VPC endpoint policy.
- rectify (`worker --once`, enforce mode) fixes all four from the findings on its queue. The
  findings are enqueued before the worker starts and are not counted: they stand for AWS Config,
  as Cloud Custodian's describe calls stand for its own discovery.

Each tool runs twice: once straight to moto, measured (CPU of the fixing process from wait4(),
user + system; wall clock; peak RSS from its VmHWM; moto's own CPU meanwhile, from /proc, since
moto serves one call at a time and the wall clock follows it), and once through the logging proxy
(scripts/fault_proxy.py, no faults) to count its calls by service and action. After each run the
seeded resources are read back from moto, and only the ones really fixed count as remediated:
every figure but the peak RSS is per remediated resource.

The goals of the comparison are printed as met or not met; nothing here fails on them.

Then the SDK alone (examples/sdk_call_cost.rs, --sdk-cost): four request shapes, 300 calls each,
one after another on this moto, emptied first so each answer is small. Its mean CPU a call
times rectify's calls a fix is what the SDK itself costs a fix, a floor no change to rectify's
own code goes under; the ratio Cloud Custodian's CPU a fix has to it is the most any such
change could reach.

With --profile, rectify runs a third time under `perf record` (CPU clock sampling, with call
chains) and the profile's top entries are printed: self time by function, summed by crate, and
the inclusive shares of the SDK's call path and its parts.

Usage: bench_peer.py --rectify PATH --custodian PATH [--sdk-cost PATH] [--per-kind N]
                     [--concurrency C] [--profile]
Prints a Markdown table and writes the figures as JSON to .rectify-run/bench-peer.json (and the
profile to .rectify-run/bench-peer-profile.txt).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import boto3

from bench_run import HOME, KINDS, REGION, enqueue, new_vpc, prepare, process_cpu, violation

RUN = ".rectify-run"
POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_peer", "policy.yml")
STATE_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
# The services whose resources are remediated; the rest are rectify's own state and queue, and
# STS (the caller's identity, role credentials).
REMEDIATED = {"s3", "ec2", "iam"}
OPEN_POLICY = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}


def reset(moto):
    urllib.request.urlopen(urllib.request.Request(moto + "/moto-api/reset", method="POST"), timeout=60).read()


def seed(per_kind, tag):
    """Seeds per_kind violations of each kind in the home account; returns (findings, ids by kind)."""
    s = boto3.Session(region_name=REGION)
    vpc = new_vpc(s)
    events, ids = [], {k: [] for k in KINDS}
    for i in range(per_kind):
        for kind in KINDS:
            eid, body = violation(s, vpc, HOME, kind, f"peer-{tag}-{kind}-{i}")
            events.append((eid, body))
            ids[kind].append(json.loads(body)["detail"]["resourceId"])
    return events, ids


def fixed(ids):
    """How many of the seeded resources of each kind moto now holds fixed."""
    s = boto3.Session(region_name=REGION)
    s3, ec2, iam = s.client("s3"), s.client("ec2"), s.client("iam")
    out = {}
    n = 0
    for b in ids["s3"]:
        try:
            c = s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
            n += all(c.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"))
        except s3.exceptions.ClientError:
            pass
    out["s3"] = n
    n = 0
    for g in ec2.describe_security_groups(GroupIds=ids["sg"])["SecurityGroups"]:
        open_ssh = any(p.get("FromPort", 0) <= 22 <= p.get("ToPort", 65535)
                       and any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
                       for p in g["IpPermissions"])
        kept_https = any(p.get("FromPort") == 443 for p in g["IpPermissions"])
        # Fixed means SSH closed and the unrelated rule left alone.
        n += (not open_ssh) and kept_https
    out["sg"] = n
    out["iam"] = sum(all(k["Status"] == "Inactive" for k in iam.list_access_keys(UserName=u)["AccessKeyMetadata"])
                     for u in ids["iam"])
    endpoints = ec2.describe_vpc_endpoints(VpcEndpointIds=ids["vpce"])["VpcEndpoints"]
    out["vpce"] = sum(json.loads(e.get("PolicyDocument") or "{}") != OPEN_POLICY for e in endpoints)
    return out


def hwm_kb(pid):
    """The process's resident high-water mark (VmHWM) in KiB, or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def measure(argv, env, log):
    """Runs argv to its end; returns (wall s, CPU s, peak RSS MB, moto's CPU s meanwhile) of
    that process alone; moto's CPU is None without MOTO_PID.

    The peak is VmHWM sampled every 10 ms while it runs, not wait4's ru_maxrss: Linux carries
    the high-water mark of the process image exec replaced into ru_maxrss, and that image is
    this Python interpreter (forked), so ru_maxrss would report the benchmark's own size."""
    moto_pid = os.environ.get("MOTO_PID")
    moto_before = process_cpu(moto_pid) if moto_pid else None
    with open(log, "w") as err:
        start = time.monotonic()
        p = subprocess.Popen(argv, env=env, stdout=err, stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.wait(0.01):
                peak[0] = max(peak[0], hwm_kb(p.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - start
        done.set()
        sampler.join()
    moto_after = process_cpu(moto_pid) if moto_pid else None
    moto = moto_after - moto_before if moto_before is not None and moto_after is not None else None
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{argv[0]} exited {p.returncode}; its output is in {log}")
    return wall, usage.ru_utime + usage.ru_stime, peak[0] / 1024, moto


def start_proxy(moto, log):
    if os.path.exists(log):
        os.remove(log)
    here = os.path.dirname(os.path.abspath(__file__))
    proxy = subprocess.Popen([sys.executable, os.path.join(here, "fault_proxy.py"), "--target", moto, "--log", log],
                             stdout=subprocess.PIPE, text=True)
    return proxy, f"http://127.0.0.1:{proxy.stdout.readline().strip()}"


def calls(log):
    """(service, action) -> count, from a proxy log; a DynamoDB write its condition refused
    counts also as ("dynamodb", "refused")."""
    out = {}
    with open(log) as f:
        for line in f:
            e = json.loads(line)
            key = (e["service"], e["action"] if not e["action"].startswith(("GET ", "PUT ", "HEAD ", "POST ", "DELETE "))
                   else e["action"].split()[0])
            out[key] = out.get(key, 0) + 1
            if e["service"] == "dynamodb" and e["action"] in STATE_WRITES and e["status"] == 400:
                out[("dynamodb", "refused")] = out.get(("dynamodb", "refused"), 0) + 1
    return out


def run(argv, env, name, moto, ids, proxied):
    """Runs one tool's argv to its end, straight to moto (measured) or through the logging proxy
    (counted); returns (measure or None, calls or None, fixed by kind)."""
    log = os.path.join(RUN, f"bench-peer-{name}.log")
    if proxied:
        plog = os.path.join(RUN, f"bench-peer-{name}-proxy.jsonl")
        proxy, env["AWS_ENDPOINT_URL"] = start_proxy(moto, plog)
        try:
            measure(argv, env, log)
        finally:
            proxy.terminate()
            proxy.wait()
        return None, calls(plog), fixed(ids)
    return measure(argv, env, log), None, fixed(ids)


def custodian(args, moto, per_kind, proxied):
    """Seeds, runs Cloud Custodian once; returns (measure or None, calls or None, fixed by kind)."""
    reset(moto)
    _, ids = seed(per_kind, "c7n")
    out = os.path.join(RUN, "c7n-out")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    argv = [args.custodian, "run", "--region", REGION, "--cache-period", "0", "-s", out, POLICY]
    return run(argv, env, "c7n", moto, ids, proxied)


def worker_argv(args):
    """rectify's worker, draining the queue. The long poll that tells --once the queue is empty
    would add its wait to the wall clock: moto's queue is exact, so a short poll sees what a long
    one would."""
    return [args.rectify, "worker", "--once", "--concurrency", str(args.concurrency), "--wait-seconds", "0"]


def queued(args, moto, per_kind, tag):
    """Resets moto, bootstraps rectify, seeds the violations and enqueues their findings; returns
    (the worker's environment, ids by kind)."""
    reset(moto)
    env = prepare(args.rectify, "peer", 4 * per_kind)
    events, ids = seed(per_kind, tag)
    enqueue("peer", events)
    return env, ids


def rectify(args, moto, per_kind, proxied):
    """Seeds, enqueues the findings, runs `rectify worker --once`; as custodian()."""
    env, ids = queued(args, moto, per_kind, "rectify")
    return run(worker_argv(args), env, "rectify", moto, ids, proxied)


# Frames whose inclusive share (the samples in them and in what they call) the profile reports:
# (what it is, a part of the demangled name that picks the frame).
PARTS = [
    ("the SDK's path of a call, request built to answer read", "aws_smithy_runtime::client::orchestrator::try_op"),
    ("  of it, hyper sending the request", "hyper_util::client::legacy::client::Client<C,B>::send_request"),
    ("    of that, opening the TCP connection", "hyper_util::client::legacy::connect::http::HttpConnector<R> as tower_service::Service"),
    ("  of it, SigV4 signing", "aws_smithy_runtime::client::orchestrator::auth::sign_request"),
    ("  of it, assembling the call's configuration", "aws_smithy_runtime::client::orchestrator::apply_configuration"),
    ("tokio waiting for I/O and timers", "tokio::runtime::scheduler::current_thread::Context::park"),
]


def profile(args, moto, per_kind):
    """Seeds, enqueues and runs `rectify worker --once` under `perf record` with call chains;
    returns (self time rows, inclusive rows): (self %, where, function) for every function
    sampled, and (what, inclusive %) for each of PARTS."""
    env, _ = queued(args, moto, per_kind, "profile")
    data = os.path.join(RUN, "bench-peer.perf.data")
    argv = ["perf", "record", "--quiet", "-e", "cpu-clock", "-F", "2000", "--call-graph", "dwarf,16384",
            "-o", data, "--"] + worker_argv(args)
    measure(argv, env, os.path.join(RUN, "bench-peer-profile.log"))
    return report(data)


def report(data):
    """The self time and inclusive rows of a perf.data (see profile)."""
    def perf_report(*flags):
        return subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", "--percent-limit", "0", *flags],
                              capture_output=True, text=True, check=True).stdout
    rows = []
    for line in perf_report("--no-children", "--sort", "dso,symbol").splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*\S)", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(4).rstrip(" -")))
    inclusive = {}
    for line in perf_report("--children", "--sort", "symbol").splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+[0-9.]+%\s+\[(.)\]\s+(.*\S)", line)
        if not m:
            continue
        for what, frame in PARTS:
            if frame in m.group(3):
                inclusive[what] = max(inclusive.get(what, 0.0), float(m.group(1)))
    return rows, [(what, inclusive.get(what, 0.0)) for what, _ in PARTS]


def crate_of(dso, symbol):
    """Where a sample's function lives: the kernel, a shared library by name, or, in rectify's
    own binary, the crate its demangled path starts with (`<T as tokio::X>::f` counts as T's)."""
    if dso.startswith("[kernel"):
        return "kernel (system calls, scheduling)"
    if not os.path.basename(dso).startswith("rectify"):
        return dso + (" (malloc and free)" if dso.startswith("libc") else "")
    m = re.match(r"[<&\s]*(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)::", symbol)
    return m.group(1) if m else "other"


def print_profile(profiled, path):
    rows, inclusive = profiled
    by_crate = {}
    for pct, dso, sym in rows:
        c = crate_of(dso, sym)
        by_crate[c] = by_crate.get(c, 0) + pct
    lines = ["Self time of rectify's CPU samples, by function (top 25):", "",
             "| % | where | function |", "|---|---|---|"]
    lines += [f"| {pct:.1f} | {dso} | `{sym[:100]}` |" for pct, dso, sym in rows[:25]]
    lines += ["", "Summed by crate (every sample):", "", "| % | crate |", "|---|---|"]
    lines += [f"| {pct:.1f} | {c} |" for c, pct in sorted(by_crate.items(), key=lambda kv: -kv[1])[:15]]
    lines += ["", "Inclusive shares (the samples in a frame and in everything it calls):", "",
              "| % | what |", "|---|---|"]
    lines += [f"| {pct:.1f} | {what} |" for what, pct in inclusive]
    text = "\n".join(lines)
    with open(path, "w") as f:
        f.write(text + "\n")
    print()
    print(text)


def summary(m, c, fixed_by_kind):
    n = sum(fixed_by_kind.values())
    wall, cpu, rss, moto = m
    refused = c.pop(("dynamodb", "refused"), 0)
    total = sum(c.values())
    by_service = {}
    for (service, _), k in c.items():
        by_service[service] = by_service.get(service, 0) + k
    per = lambda x: x / n if n else float("nan")
    return {
        "remediated": n, "remediated_by_kind": fixed_by_kind,
        "cpu_ms": per(cpu * 1000), "wall_ms": per(wall * 1000), "peak_rss_mb": rss,
        "moto_cpu_ms": per(moto * 1000) if moto is not None else float("nan"),
        "calls": per(total), "calls_by_service": {s: round(per(k), 2) for s, k in sorted(by_service.items())},
        "remediated_service_calls": per(sum(k for (s, _), k in c.items() if s in REMEDIATED)),
        "state_writes": per(sum(k for (s, a), k in c.items() if s == "dynamodb" and a in STATE_WRITES)),
        "sqs_calls": per(by_service.get("sqs", 0)),
        "state_writes_refused": per(refused),
        "single_deletes": c.get(("sqs", "DeleteMessage"), 0),
        "run_wall_s": wall, "run_cpu_s": cpu,
    }


def sdk_floor(binary, moto, c7n, rect):
    """Runs the SDK alone (examples/sdk_call_cost) on this moto, emptied; prints its table, and the
    floor it sets under rectify's CPU a fix."""
    reset(moto)
    print()
    print("The SDK alone, on this moto (examples/sdk_call_cost) ...", flush=True)
    out = subprocess.run([binary, "300"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{binary} exited {out.returncode}: {out.stderr.strip()}")
    print()
    print(out.stdout.rstrip())
    m = re.search(r"mean CPU a call: ([0-9.]+) µs", out.stdout)
    if m is None:
        sys.exit(f"{binary} printed no mean CPU a call:\n{out.stdout}")
    per_call = float(m.group(1)) / 1000
    floor = per_call * rect["calls"]
    print()
    print(f"rectify: {rect['cpu_ms'] / rect['calls']:.3f} ms of CPU a call ({rect['cpu_ms']:.2f} ms over "
          f"{rect['calls']:.2f} calls a fix). The SDK alone: {per_call:.3f} ms a call, so "
          f"{floor:.2f} ms a fix for rectify's calls; Cloud Custodian's {c7n['cpu_ms']:.1f} ms is "
          f"{c7n['cpu_ms'] / floor:.1f}× that: the most any change to rectify's own code could reach.")
    return {"sdk_cpu_ms_per_call": per_call, "sdk_floor_cpu_ms_per_fix": floor,
            "cloud_custodian_over_floor": c7n["cpu_ms"] / floor}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rectify", required=True)
    p.add_argument("--custodian", required=True)
    p.add_argument("--per-kind", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--sdk-cost", help="the sdk_call_cost example: what the SDK alone costs a call")
    p.add_argument("--profile", action="store_true", help="also profile rectify's run with perf")
    args = p.parse_args()
    moto = os.environ["AWS_ENDPOINT_URL"]
    os.makedirs(RUN, exist_ok=True)
    n = args.per_kind

    print(f"Cloud Custodian: {n} violations of each of {len(KINDS)} kinds, measured run ...", flush=True)
    c7n_m, _, c7n_fixed = custodian(args, moto, n, proxied=False)
    print(f"  fixed {c7n_fixed}; counting its calls through the logging proxy ...", flush=True)
    _, c7n_c, c7n_fixed2 = custodian(args, moto, n, proxied=True)
    print("rectify: the same violations, measured run ...", flush=True)
    r_m, _, r_fixed = rectify(args, moto, n, proxied=False)
    print(f"  fixed {r_fixed}; counting its calls through the logging proxy ...", flush=True)
    _, r_c, r_fixed2 = rectify(args, moto, n, proxied=True)
    for who, a, b in (("Cloud Custodian", c7n_fixed, c7n_fixed2), ("rectify", r_fixed, r_fixed2)):
        if a != b:
            print(f"WARNING: {who} fixed {a} in the measured run and {b} in the counted one", flush=True)

    c7n, rect = summary(c7n_m, c7n_c, c7n_fixed), summary(r_m, r_c, r_fixed)
    ratio = lambda k: c7n[k] / rect[k] if rect[k] else float("inf")
    goals = [
        # (label, key, unit, goal text, met)
        ("CPU of the fixing process", "cpu_ms", "ms", "≥ 50× less", ratio("cpu_ms") >= 50),
        ("wall clock, verify and audit included", "wall_ms", "ms", "≤ Cloud Custodian's", rect["wall_ms"] <= c7n["wall_ms"]),
        ("moto's CPU serving the tool (one core: what the wall clock follows)", "moto_cpu_ms", "ms", "", None),
        ("calls, all", "calls", "", "", None),
        ("calls to the remediated service", "remediated_service_calls", "", "≤ 4", rect["remediated_service_calls"] <= 4),
        ("state writes (DynamoDB)", "state_writes", "", "≤ 2", rect["state_writes"] <= 2),
        ("SQS calls", "sqs_calls", "", "deletes batched", rect["single_deletes"] == 0),
        ("peak RSS of the process (MB, not per resource)", "peak_rss_mb", "", "≤ 25 MB", rect["peak_rss_mb"] <= 25),
    ]
    figures = {"per_kind": n, "cloud_custodian": c7n, "rectify": rect,
               "goals": {label: met for label, _, _, _, met in goals if met is not None}}

    fmt = lambda v, unit: f"{v:.2f} {unit}".strip() if v < 10 else f"{v:.1f} {unit}".strip()
    print()
    print(f"Remediated: Cloud Custodian {c7n['remediated']} ({c7n['remediated_by_kind']}), "
          f"rectify {rect['remediated']} ({rect['remediated_by_kind']}); "
          f"one account, moto, {n} of each kind seeded.")
    print()
    print("| per remediated resource | Cloud Custodian | rectify | Cloud Custodian ÷ rectify | goal | met |")
    print("|---|---|---|---|---|---|")
    for label, key, unit, goal, met in goals:
        r = f"{ratio(key):.2f}×" if c7n[key] and rect[key] else "–"
        print(f"| {label} | {fmt(c7n[key], unit)} | {fmt(rect[key], unit)} | {r} | {goal} | "
              f"{'' if met is None else ('met' if met else 'not met')} |")
    print()
    print(f"Calls by service, per remediated resource: Cloud Custodian {c7n['calls_by_service']}; "
          f"rectify {rect['calls_by_service']}. rectify's state writes refused by their condition (and "
          f"retried): {rect['state_writes_refused']:.2f}; its single DeleteMessage calls: {rect['single_deletes']}.")
    if args.sdk_cost:
        figures["sdk_alone"] = sdk_floor(args.sdk_cost, moto, c7n, rect)
    with open(os.path.join(RUN, "bench-peer.json"), "w") as f:
        json.dump(figures, f, indent=2)
    if args.profile:
        print()
        print("rectify again, under perf record (CPU clock, 2 kHz, with call chains) ...", flush=True)
        print_profile(profile(args, moto, n), os.path.join(RUN, "bench-peer-profile.txt"))


if __name__ == "__main__":
    main()
