"""The Organization-scale sweep benchmark, run by `scripts/bench --sweep` against moto (AWS_*
variables set by it).

1. Allows A accounts and seeds, in each of two regions of each, R resources of each of the four
   original kinds that each need a fix: buckets without a Public Access Block, security groups
   open to SSH, VPC endpoints whose policy allows everyone; and R IAM users with an active key
   in each account (IAM is account-wide).
2. Runs `rectify sweep --all-accounts --region ... --what-if --json` (every remediation of the
   catalog) serially (`--concurrency 1`) and concurrently (the default bound), and measures wall
   clock and rectify's CPU; both runs must find every seeded resource.
3. Runs the concurrent sweep once more through the logging proxy (scripts/fault_proxy.py, no
   faults) to count the AWS calls.

Usage: bench_sweep.py --rectify PATH [--accounts 50] [--per-type 10] [--regions us-east-1,eu-west-1]
                      [--concurrency 16]
Prints a Markdown table and writes the figures as JSON to .rectify-run/bench-sweep.json.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPEN_POLICY = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})


def account_ids(n):
    return [f"7{i:011d}" for i in range(1, n + 1)]


def session(account, region):
    c = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/rectify-remediation", RoleSessionName="bench-sweep")["Credentials"]
    return boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                         aws_session_token=c["SessionToken"], region_name=region)


def seed_account(account, regions, per_type):
    """Seeds one account; returns (account, id) of each resource a sweep must find there."""
    found = set()
    for k, region in enumerate(regions):
        s = session(account, region)
        s3 = s.client("s3")
        for i in range(per_type):
            name = f"sweep-{account}-{region}-{i}"
            if region == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
            found.add((account, name))
        ec2 = s.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        for i in range(per_type):
            g = ec2.create_security_group(GroupName=f"sweep-{i}", Description="bench", VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            found.add((account, g))
            ep = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{region}.s3",
                                         PolicyDocument=OPEN_POLICY)["VpcEndpoint"]["VpcEndpointId"]
            found.add((account, ep))
        if k == 0:
            iam = s.client("iam")
            for i in range(per_type):
                name = f"sweep-user-{i}"
                iam.create_user(UserName=name)
                iam.create_access_key(UserName=name)
                found.add((account, name))
    return found


def prepare(rectify, prefix, accounts):
    env = dict(os.environ, RECTIFY_PREFIX=prefix, RECTIFY_LOG_FORMAT="json", RECTIFY_LOG="warn")
    run = lambda *a: subprocess.run([rectify, *a], env=env, check=True, stdout=subprocess.DEVNULL)
    run("bootstrap")
    run("settings", "accounts", "add", *accounts, "--by", "bench")
    run("settings", "set", "vpce-restrict-policy", "--param", "organization_id=o-benchmark01", "--by", "bench")
    run("settings", "set", "iam-deactivate-stale-keys", "--param", "max_unused_days=0", "--by", "bench")
    return env


def sweep(rectify, env, regions, concurrency, endpoint=None):
    args = [rectify, "sweep", "--all-accounts", "--what-if", "--json", "--concurrency", str(concurrency)]
    for r in regions:
        args += ["--region", r]
    if endpoint:
        env = dict(env, AWS_ENDPOINT_URL=endpoint)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    p = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        lines = json.loads(p.stdout)
    except ValueError:
        sys.exit(f"sweep exited {p.returncode} without a report: {p.stderr[-4000:]}")
    errors = [(l["remediation"], l["account"], l["region"], e["error"]) for l in lines for e in l["errors"]]
    if errors:
        # Reported, not fatal: the figure that matters is that every seeded resource is found.
        print(f"sweep exited {p.returncode} with {len(errors)} error(s), e.g. {errors[:3]}", flush=True)
    found = {(l["account"], c["resource_id"]) for l in lines for c in l["would_change"]}
    scanned = sum(l["scanned"] for l in lines)
    return wall, cpu, found, scanned, len(errors)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rectify", required=True)
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--per-type", type=int, default=10)
    ap.add_argument("--regions", default="us-east-1,eu-west-1")
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    regions = a.regions.split(",")
    accounts = account_ids(a.accounts)
    prefix = f"sweep{int(time.time())}"
    env = prepare(a.rectify, prefix, accounts)
    t = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        expected = set().union(*pool.map(lambda acc: seed_account(acc, regions, a.per_type), accounts))
    print(f"seeded {len(expected)} resources in {a.accounts} accounts x {len(regions)} regions "
          f"in {time.monotonic() - t:.0f} s", flush=True)

    figures = {}
    for name, c in (("serial", 1), ("concurrent", a.concurrency)):
        wall, cpu, found, scanned, errors = sweep(a.rectify, env, regions, c)
        missing = expected - found
        if missing:
            sys.exit(f"{name} sweep missed {len(missing)} seeded resources, e.g. {sorted(missing)[:5]}")
        figures[name] = {"concurrency": c, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "found": len(found), "scanned": scanned, "errors": errors}
        print(f"{name}: {wall:.1f} s wall, {cpu:.2f} s CPU, {len(found)} found of {scanned} scanned", flush=True)

    log = os.path.join(ROOT, ".rectify-run", f"bench-sweep-proxy-{prefix}.jsonl")
    proxy = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "fault_proxy.py"),
                              "--target", os.environ["AWS_ENDPOINT_URL"], "--log", log],
                             stdout=subprocess.PIPE, text=True)
    try:
        port = proxy.stdout.readline().strip()
        sweep(a.rectify, env, regions, a.concurrency, endpoint=f"http://127.0.0.1:{port}")
    finally:
        proxy.kill()
    calls = {}
    with open(log) as f:
        for line in f:
            e = json.loads(line)
            calls[e["service"]] = calls.get(e["service"], 0) + 1
    figures["calls"] = calls
    figures["calls_total"] = sum(calls.values())
    figures["setup"] = {"accounts": a.accounts, "regions": regions, "per_type": a.per_type,
                        "resources": len(expected),
                        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    with open(os.path.join(ROOT, ".rectify-run", "bench-sweep.json"), "w") as f:
        json.dump(figures, f, indent=2)
    s, c = figures["serial"], figures["concurrent"]
    print()
    print("| accounts × regions | resources | serial wall | concurrent wall (bound) | speed-up | calls |")
    print("|---|---|---|---|---|---|")
    print(f"| {a.accounts} × {len(regions)} | {len(expected)} | {s['wall_s']} s | {c['wall_s']} s "
          f"({c['concurrency']}) | {s['wall_s'] / c['wall_s']:.1f}× | {figures['calls_total']} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))}) |")


if __name__ == "__main__":
    main()
