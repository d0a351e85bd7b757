"""A fault-injecting HTTP proxy between rectify and the local AWS (moto), for tests.

On a configurable share of requests it answers, instead of the service, with an error in the
service's own protocol: HTTP 500 (InternalError), 503 (ServiceUnavailable), throttling
(ThrottlingException for JSON services, SlowDown for S3, RequestLimitExceeded for EC2, Throttling
for IAM/STS/SNS), or it delays the request and then forwards it. A faulted request never reaches
moto. In "down" mode it closes every connection without an answer, as an unreachable endpoint.

Every request it forwards is written, one JSON object a line, to the log file: the service, the
action, when it was forwarded and when moto's answer was read (Unix seconds), and for the calls
that change a resource, what they change; for DynamoDB, the tables a call names and whether it
writes to the audit anchor chain. Tests count the mutating calls moto really received from it,
and the calls per finding.

Usage: python scripts/fault_proxy.py --target http://127.0.0.1:PORT --log FILE
                                     [--fail-rate 0.2] [--delay-ms 300] [--seed N]
It prints the port it listens on (127.0.0.1), then serves until killed.
Control: POST /__proxy/config with JSON {"fail_rate": 0.5, "down": true, "delay_only": true,
"delay_ms": 500} changes the behaviour, and answers with the state after the change.
Targeted faults: {"throttle_action": "ListBuckets", "throttle_count": 5} throttles the next 5
requests of that action (throttle_count counts down as it does), after letting the first
"throttle_skip" of them through (counting down too); {"throttle_table": "rectify-audit",
"throttle_count": 5} throttles the next 5 DynamoDB requests that name that table, whatever their
action; {"deny_assume_role":
["111122223333"]} answers STS AssumeRole into a role of those accounts with AccessDenied (403),
as AWS does when the role does not trust the caller; {"hang_action": "PutPublicAccessBlock",
"hang_count": 1} holds the next request of that action without ever answering it, as an
endpoint that stops responding, until the client gives up and closes the connection, which
"hangs_abandoned" counts. "in_flight_max" is the most requests it
has held at once (set it to 0 to measure afresh), of one action when "in_flight_action" names it.
"""

import argparse
import base64
import http.client
import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOG_ALL = False
STATE = {"fail_rate": 0.0, "down": False, "delay_ms": 300, "delay_only": False,
         "throttle_action": None, "throttle_count": 0, "throttle_skip": 0, "deny_assume_role": [],
         "in_flight": 0, "in_flight_max": 0, "in_flight_action": None,
         "hang_action": None, "hang_count": 0, "hangs_abandoned": 0, "throttle_table": None}
LOCK = threading.Lock()
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}
MUTATING = {
    "PutPublicAccessBlock", "DeletePublicAccessBlock", "RevokeSecurityGroupIngress",
    "AuthorizeSecurityGroupIngress", "UpdateAccessKey", "ModifyVpcEndpoint",
    "ModifyInstanceMetadataOptions", "RevokeSecurityGroupEgress", "AuthorizeSecurityGroupEgress",
    "DeleteNetworkAclEntry", "CreateNetworkAclEntry",
    "UpdateAccountPasswordPolicy", "DeleteAccountPasswordPolicy", "PutConfigurationRecorder",
    "DeleteConfigurationRecorder", "PutDeliveryChannel", "DeleteDeliveryChannel",
    "StartConfigurationRecorder", "StopConfigurationRecorder",
    "CreateFlowLogs", "DeleteFlowLogs", "StartLogging", "StopLogging", "CreateTrail",
    "DeleteTrail", "UpdateTrail", "PutImageScanningConfiguration", "EnableKeyRotation",
    "DisableKeyRotation",
}


def service_of(headers):
    m = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    return m.group(1) if m else "unknown"


def action_of(service, method, path, query, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    if service == "s3":
        if "publicAccessBlock" in query:
            return {"PUT": "PutPublicAccessBlock", "DELETE": "DeletePublicAccessBlock"}.get(method, "GetPublicAccessBlock")
        if method == "GET" and path == "/":
            return "ListBuckets"
        return f"{method} {path}"
    form = parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", [f"{method} {path}"])[0]


def tables_of(body):
    """The DynamoDB tables a request's body names."""
    return sorted({t.decode() for t in re.findall(rb'"TableName":\s*"([^"]+)"', body)})


def targeted_fault(service, action, body):
    """The fault a targeted rule asks for this request, if any (called under LOCK)."""
    if action == STATE["throttle_action"] and STATE["throttle_skip"] > 0:
        STATE["throttle_skip"] -= 1
    elif action == STATE["throttle_action"] and STATE["throttle_count"] > 0:
        STATE["throttle_count"] -= 1
        return "throttle"
    if (service == "dynamodb" and STATE["throttle_table"] and STATE["throttle_count"] > 0
            and STATE["throttle_table"] in tables_of(body)):
        STATE["throttle_count"] -= 1
        return "throttle"
    if action == STATE["hang_action"] and STATE["hang_count"] > 0:
        STATE["hang_count"] -= 1
        return "hang"
    if service == "sts" and action == "AssumeRole":
        arn = parse_qs(body.decode("utf-8", "replace")).get("RoleArn", [""])[0]
        if arn.split(":")[4:5] and arn.split(":")[4] in STATE["deny_assume_role"]:
            return "denied"
    return None


def error_response(service, kind):
    """(status, content type, body, extra headers) of an error in the service's protocol."""
    code, status = {
        "500": ("InternalError", 500),
        "503": ("ServiceUnavailable", 503),
        "denied": ("AccessDenied", 403),
    }.get(kind, (None, None))
    if kind == "throttle":
        code, status = {
            "s3": ("SlowDown", 503),
            "ec2": ("RequestLimitExceeded", 503),
            "dynamodb": ("ThrottlingException", 400),
            "sqs": ("RequestThrottled", 400),
        }.get(service, ("Throttling", 400))
    if service in ("dynamodb", "sqs"):
        body = json.dumps({"__type": code, "message": "injected by fault_proxy"})
        return status, "application/x-amz-json-1.0", body, {"x-amzn-ErrorType": code}
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>injected by fault_proxy</Message></Error>"
        return status, "application/xml", body, {}
    if service == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>injected by fault_proxy</Message>"
                "</Error></Errors><RequestID>fault</RequestID></Response>")
        return status, "text/xml", body, {}
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            "<Message>injected by fault_proxy</Message></Error><RequestId>fault</RequestId></ErrorResponse>")
    return status, "text/xml", body, {}


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # The headers and the body go out in two writes: without this, Nagle's algorithm holds
        # the body until the client's delayed ACK, adding about 40 ms to every proxied call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        if split.path == "/__proxy/config":
            with LOCK:
                STATE.update(json.loads(body or b"{}"))
                answer = json.dumps(STATE).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        service = service_of(self.headers)
        action = action_of(service, self.command, split.path, split.query, self.headers, body)
        with LOCK:
            counted = STATE["in_flight_action"] in (None, action)
            if counted:
                STATE["in_flight"] += 1
                STATE["in_flight_max"] = max(STATE["in_flight_max"], STATE["in_flight"])
        try:
            self.serve(body, split, service, action)
        finally:
            if counted:
                with LOCK:
                    STATE["in_flight"] -= 1

    def serve(self, body, split, service, action):
        with LOCK:
            down, fail_rate, delay_ms = STATE["down"], STATE["fail_rate"], STATE["delay_ms"]
            roll = RNG.random()
            kind = RNG.choice(["500", "503", "throttle", "throttle", "delay"])
            if STATE["delay_only"]:
                roll, kind, fail_rate = 0.0, "delay", 1.0
        if down:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        with LOCK:
            targeted = targeted_fault(service, action, body)
        if targeted:
            roll, kind = -1.0, targeted
        if kind == "hang" and roll < 0:
            # No answer, ever: wait for the client to close the connection (recv reads b"").
            try:
                while self.connection.recv(4096):
                    pass
            except OSError:
                pass
            with LOCK:
                STATE["hangs_abandoned"] += 1
            self.close_connection = True
            return
        if roll < fail_rate:
            if kind == "delay":
                time.sleep(delay_ms / 1000.0)
            else:
                status, ctype, text, extra = error_response(service, kind)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
        started = time.time()
        conn = http.client.HTTPConnection(TARGET.hostname, TARGET.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        ended = time.time()
        entry = {"service": service, "action": action, "status": resp.status, "start": started, "end": ended}
        if LOG_ALL:
            entry["request"] = {
                "method": self.command, "path": self.path, "headers": headers,
                "body": base64.b64encode(body).decode("ascii"),
            }
        if LOG_ALL and action == "ReceiveMessage" and resp.status == 200:
            # The receipt handles handed out, so a replay can map them to its own.
            try:
                entry["receipts"] = [m["ReceiptHandle"] for m in json.loads(data).get("Messages", [])]
            except ValueError:
                pass
        if service == "dynamodb":
            entry["tables"] = tables_of(body)
            entry["anchor"] = re.search(rb'"chain":\s*\{"S":\s*"anchors"\}', body) is not None
        if action in MUTATING:
            entry["path"] = split.path
            entry["body"] = body.decode("utf-8", "replace")[:4000]
        with LOCK:
            LOG.write(json.dumps(entry) + "\n")
            LOG.flush()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    global TARGET, LOG, RNG, LOG_ALL
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--delay-ms", type=int, default=300)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--log-all", action="store_true", help="log every request whole, to replay it")
    args = p.parse_args()
    TARGET = urlsplit(args.target)
    LOG_ALL = args.log_all
    LOG = open(args.log, "a")
    RNG = random.Random(args.seed)
    STATE.update(fail_rate=args.fail_rate, delay_ms=args.delay_ms)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    # Connections closed on purpose ("down") and clients that go away are not errors here.
    server.handle_error = lambda request, client_address: None
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
