"""The end-to-end benchmark, run by scripts/bench against moto (AWS_* variables set by it).

1. Seeds N violations across the four kinds in two accounts and enqueues their N findings.
2. Runs `rectify worker --once` and measures: findings per second, enqueue-to-applied latency
   (p50/p99), worker CPU seconds per finding, peak RSS, time from exec to first poll.
3. Resets moto, so the second run finds what the first found, and runs the same workload again
   (N fresh violations) through the logging proxy (scripts/fault_proxy.py, no faults) to count
   the AWS and state calls per finding.
4. Puts those N messages back on that queue and replays exactly the logged requests straight to
   moto, one at a time, receipt handles mapped to the ones moto hands out now: moto's own time to
   serve the same calls with the same backlog, and so the ceiling rectify can reach here. (moto's
   SQS scans its queue on every receive, so a receive costs more the more messages wait.)

Usage: bench_run.py --rectify PATH --n N [--proxy-n M] [--concurrency C]
Prints a Markdown table and writes the figures as JSON to .rectify-run/bench.json.
"""

import argparse
import base64
import http.client
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

import boto3

HOME, MEMBER, REGION = "123456789012", "210987654321", os.environ.get("AWS_REGION", "us-east-1")
KINDS = ["s3", "sg", "iam", "vpce"]


def session(account):
    if account == HOME:
        return boto3.Session(region_name=REGION)
    c = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/rectify-remediation", RoleSessionName="bench")["Credentials"]
    return boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                         aws_session_token=c["SessionToken"], region_name=REGION)


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event(account, rule, rtype, rid):
    eid = str(uuid.uuid4())
    detail = {
        "resourceId": rid, "awsRegion": REGION, "awsAccountId": account, "configRuleName": rule,
        "resourceType": rtype, "messageType": "ComplianceChangeNotification",
        "newEvaluationResult": {"evaluationResultIdentifier": {"orderingTimestamp": now_iso()},
                                "complianceType": "NON_COMPLIANT", "annotation": None},
    }
    return eid, json.dumps({"version": "0", "id": eid, "detail-type": "Config Rules Compliance Change",
                            "source": "aws.config", "account": account, "time": now_iso(), "region": REGION,
                            "resources": [], "detail": detail})


def violation(s, vpc, account, kind, name):
    """Creates one violation of `kind` through session `s` (VPC `vpc` for the EC2 kinds) and
    returns the (event id, body) of the finding that reports it."""
    if kind == "s3":
        s.client("s3").create_bucket(Bucket=name)
        return event(account, "s3-bucket-level-public-access-prohibited", "AWS::S3::Bucket", name)
    if kind == "sg":
        ec2 = s.client("ec2")
        g = ec2.create_security_group(GroupName=name, Description="bench", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        return event(account, "restricted-ssh", "AWS::EC2::SecurityGroup", g)
    if kind == "iam":
        iam = s.client("iam")
        iam.create_user(UserName=name)
        iam.create_access_key(UserName=name)
        return event(account, "access-keys-rotated", "AWS::IAM::User", name)
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})
    ep = s.client("ec2").create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3",
                                            PolicyDocument=policy)["VpcEndpoint"]["VpcEndpointId"]
    return event(account, "vpc-endpoint-policy-check", "AWS::EC2::VPCEndpoint", ep)


def new_vpc(s):
    return s.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]


def seed(n, tag):
    """Creates n violations (kinds round-robin, accounts alternating); returns (event id, body)s."""
    clients = {a: session(a) for a in (HOME, MEMBER)}
    vpcs = {a: new_vpc(clients[a]) for a in clients}
    out = []
    for i in range(n):
        account = HOME if i % 2 == 0 else MEMBER
        kind = KINDS[(i // 2) % len(KINDS)]
        out.append(violation(clients[account], vpcs[account], account, kind, f"bench-{tag}-{i}"))
    return out


def enqueue(prefix, events):
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=f"{prefix}-events")["QueueUrl"]
    sent = {}
    for i in range(0, len(events), 10):
        batch = events[i:i + 10]
        t = time.time()
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": b} for j, (_, b) in enumerate(batch)])
        for eid, _ in batch:
            sent[eid] = t
    return sent


def prepare(rectify, prefix, n):
    env = dict(os.environ, RECTIFY_PREFIX=prefix)
    run = lambda *a: subprocess.run([rectify, *a], env=env, check=True, stdout=subprocess.DEVNULL)
    run("bootstrap", "--visibility-timeout", "300")
    # The allow-list fails closed: allow the two accounts the violations are seeded in.
    run("settings", "accounts", "add", HOME, MEMBER, "--by", "bench")
    for r in ["s3-block-public-access", "sg-revoke-open-ssh", "iam-deactivate-stale-keys", "vpce-restrict-policy"]:
        run("settings", "set", r, "--mode", "enforce", "--yes", "--breaker-limit", str(10 * n + 100), "--by", "bench")
    run("settings", "set", "vpce-restrict-policy", "--param", "organization_id=o-benchmark01", "--by", "bench")
    run("settings", "set", "iam-deactivate-stale-keys", "--param", "max_unused_days=0", "--by", "bench")
    return env


def process_cpu(pid):
    """CPU seconds (user + system) a process has used so far, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_worker(rectify, env, concurrency):
    moto_pid = os.environ.get("MOTO_PID")
    moto_before = process_cpu(moto_pid) if moto_pid else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    p = subprocess.Popen([rectify, "worker", "--once", "--concurrency", str(concurrency)], env=env,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first_poll = None
    peak_kb = 0

    def sample():
        # The worker's own high-water mark (VmHWM), read while it runs.
        nonlocal peak_kb
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for l in f:
                    if l.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(l.split()[1]))
        except OSError:
            pass

    import threading
    done = threading.Event()

    def sampler():
        while not done.is_set():
            sample()
            time.sleep(0.05)

    threading.Thread(target=sampler, daemon=True).start()
    for line in p.stderr:
        if first_poll is None and '"polling"' in line:
            first_poll = time.monotonic() - start
    sample()
    p.wait()
    done.set()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        sys.exit(f"worker exited {p.returncode}")
    moto_after = process_cpu(moto_pid) if moto_pid else None
    moto_busy = (moto_after - moto_before) / wall if moto_before is not None and moto_after is not None else None
    return wall, cpu, peak_kb, first_poll, moto_busy


def audit(rectify, env):
    out = subprocess.run([rectify, "audit", "list", "--json"], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


HANDLE_ACTIONS = {"DeleteMessage", "ChangeMessageVisibility", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"}


def replay(log_path, moto):
    """Sends the logged requests straight to moto, one at a time, and returns (requests, seconds
    moto took to answer them). SQS receipt handles are mapped from the logged run's to the ones
    this replay's receives get, so deletes really delete and the backlog drains as it did."""
    target = urlsplit(moto)
    requests = []
    with open(log_path) as f:
        for line in f:
            e = json.loads(line)
            r = e.get("request")
            if not r:
                continue
            body = base64.b64decode(r["body"])
            if e["action"] == "ReceiveMessage":
                # Do not wait on an empty queue: measure the call, not the long poll.
                doc = json.loads(body or b"{}")
                doc["WaitTimeSeconds"] = 0
                body = json.dumps(doc).encode()
            requests.append((e["action"], r["method"], r["path"], r["headers"], body, e.get("receipts", [])))
    live = {}

    def mapped(handle):
        return live.get(handle, handle)

    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    serving = 0.0
    refused = {}
    spent = {}
    for action, method, path, headers, body, receipts in requests:
        if action in HANDLE_ACTIONS:
            doc = json.loads(body)
            if "ReceiptHandle" in doc:
                doc["ReceiptHandle"] = mapped(doc["ReceiptHandle"])
            for entry in doc.get("Entries", []):
                entry["ReceiptHandle"] = mapped(entry["ReceiptHandle"])
            body = json.dumps(doc).encode()
        headers = dict(headers, **{"Content-Length": str(len(body))})
        t = time.monotonic()
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        took = time.monotonic() - t
        serving += took
        label = action if not action.startswith(("GET ", "PUT ", "HEAD ")) else action.split()[0] + " (S3)"
        spent[label] = spent.get(label, 0.0) + took
        if resp.status >= 300:
            refused[label] = refused.get(label, 0) + 1
        if action == "ReceiveMessage" and receipts:
            got = [m["ReceiptHandle"] for m in json.loads(data).get("Messages", [])]
            live.update(zip(receipts, got))
    top = sorted(spent.items(), key=lambda kv: -kv[1])[:8]
    print("replay: moto's seconds by call: " + ", ".join(f"{k} {v:.1f}" for k, v in top), flush=True)
    return len(requests), serving, refused


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rectify", required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--proxy-n", type=int, default=None, help="findings in the logged run (default: N)")
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    args.proxy_n = args.proxy_n or args.n
    moto = os.environ["AWS_ENDPOINT_URL"]

    print(f"seeding {args.n} violations in accounts {HOME} and {MEMBER} ...", flush=True)
    env = prepare(args.rectify, "bench", args.n)
    events = seed(args.n, "a")
    t = time.monotonic()
    sent = enqueue("bench", events)
    enqueue_s = time.monotonic() - t
    print(f"enqueued {len(sent)} findings in {enqueue_s:.1f} s; running the worker ...", flush=True)
    wall, cpu, rss_kb, first_poll, moto_busy = run_worker(args.rectify, env, args.concurrency)
    records = audit(args.rectify, env)
    applied = {r["event_id"]: r for r in records if r.get("outcome") == "applied" and r.get("event_id") in sent}
    lat = sorted(datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() - sent[e] for e, r in applied.items())
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    if len(applied) != args.n:
        # The rate and latencies below cover only what was applied: say so rather than hide it.
        print(f"WARNING: {len(applied)} of {args.n} findings were applied; see `rectify jobs list`", flush=True)

    print(f"resetting moto; counting calls per finding on {args.proxy_n} findings through the logging proxy ...", flush=True)
    # moto's EC2 and SQS scan what they hold: the logged run and its replay start from the same
    # empty emulator the measured run started from.
    urllib.request.urlopen(urllib.request.Request(moto + "/moto-api/reset", method="POST"), timeout=60).read()
    log = os.path.join(".rectify-run", "bench-proxy.jsonl")
    if os.path.exists(log):
        os.remove(log)
    proxy = subprocess.Popen([sys.executable, "scripts/fault_proxy.py", "--target", moto, "--log", log, "--log-all"],
                             stdout=subprocess.PIPE, text=True)
    port = proxy.stdout.readline().strip()
    env2 = prepare(args.rectify, "bench2", args.proxy_n)
    events2 = seed(args.proxy_n, "b")
    enqueue("bench2", events2)
    env2["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    run_worker(args.rectify, env2, args.concurrency)
    proxy.terminate()
    by_service = {}
    with open(log) as f:
        for line in f:
            e = json.loads(line)
            by_service[e["service"]] = by_service.get(e["service"], 0) + 1
    calls = sum(by_service.values())
    calls_per_finding = calls / args.proxy_n
    print(f"replaying those {calls} calls straight to moto, with the same {args.proxy_n} messages waiting ...", flush=True)
    enqueue("bench2", events2)
    replayed, serving, refused = replay(log, moto)
    sqs = boto3.client("sqs", region_name=REGION)
    left = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="bench2-events")["QueueUrl"],
                                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    print(f"replay: answered with an error (writes the logged run already made, and what failed then too): {refused}; left on the queue: {left['Attributes']}")
    moto_rate = replayed / serving
    ceiling = args.proxy_n / serving
    rate = len(applied) / wall

    figures = {
        "findings": args.n, "applied": len(applied), "concurrency": args.concurrency,
        "findings_per_second": round(rate, 2), "p50_enqueue_to_applied_s": round(pct(0.50), 2),
        "p99_enqueue_to_applied_s": round(pct(0.99), 2), "worker_wall_s": round(wall, 2),
        "worker_cpu_ms_per_finding": round(cpu * 1000 / args.n, 3),
        "moto_cpu_share_of_one_core_during_run": round(moto_busy, 2) if moto_busy is not None else None, "peak_rss_mb": round(rss_kb / 1024, 1),
        "exec_to_first_poll_ms": round(first_poll * 1000, 1) if first_poll else None,
        "calls_per_finding": round(calls_per_finding, 2),
        "calls_per_finding_by_service": {k: round(v / args.proxy_n, 2) for k, v in sorted(by_service.items())},
        "moto_raw_calls_per_second": round(moto_rate, 1), "moto_ceiling_findings_per_second": round(ceiling, 2),
        "share_of_moto_ceiling": round(rate / ceiling, 2), "enqueue_seconds": round(enqueue_s, 1),
    }
    os.makedirs(".rectify-run", exist_ok=True)
    with open(os.path.join(".rectify-run", "bench.json"), "w") as f:
        json.dump(figures, f, indent=2)
    print()
    print("| figure | value |")
    print("|---|---|")
    for k, v in figures.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
