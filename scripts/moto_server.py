"""Starts moto's server as `moto_server` does, with one difference: DynamoDB requests are handled
one at a time.

Real DynamoDB applies a conditional write atomically. moto's threaded server checks a condition
and then writes, so two concurrent conditional writes to one item can both succeed. rectify's job
claims and resource locks rely on that atomicity, so this local AWS serializes DynamoDB calls;
other services stay concurrent (an SQS long poll does not hold up the rest).

It also honours S3's ExpectedBucketOwner (the `x-amz-expected-bucket-owner` header), which moto
ignores: as on AWS, a request naming a bucket owned by another account than the one expected
fails with 403 AccessDenied.

And DeleteNetworkAclEntry of an entry that is not there fails as on AWS, with
InvalidNetworkAclEntry.NotFound (moto fails with an internal error instead).
And it keeps an RDS snapshot's `restore` attribute a set, as AWS does: ModifyDBSnapshotAttribute
with a value already present (`ValuesToAdd=["all"]` on a snapshot already shared with all) leaves
it once; moto would list it twice.

GuardDuty's CreateDetector and EC2's CreateFlowLogs honour their ClientToken, as AWS documents
for idempotent requests (moto ignores it): a request repeating the token of an earlier one with
the same parameters returns the earlier result (the same detector id, the same flow log ids)
and creates nothing; with other parameters it fails (IdempotentParameterMismatch on EC2,
BadRequestException on GuardDuty). And CreateDetector fails with BadRequestException when the
account already has a detector in the region: GuardDuty allows one per account and region.

Usage: python scripts/moto_server.py HOST PORT
"""

import os
import sys
import threading

import json

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.network_acls import NetworkAclBackend
from moto.ec2.responses.flow_logs import FlowLogs as FlowLogsResponse
from moto.guardduty.exceptions import GuardDutyException
from moto.guardduty.responses import GuardDutyResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.rds.models import SnapshotAttributesMixin
from moto.s3.models import s3_backends
from werkzeug.serving import run_simple


def bucket_owner_mismatch(environ):
    """The 403 body when an S3 request's expected bucket owner is not the bucket's owner."""
    expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
    if not expected or "/s3/" not in environ.get("HTTP_AUTHORIZATION", ""):
        return None
    # Path-style requests (the SDK uses them for an IP endpoint): /<bucket>/<key>?...
    bucket = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
    owner = s3_backends.bucket_accounts.get(bucket)
    if not bucket or owner is None or owner[1] == expected:
        return None
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        "<Message>Access Denied</Message></Error>"
    ).encode()


def delete_network_acl_entry(self, network_acl_id, rule_number, egress):
    """moto's DeleteNetworkAclEntry, with AWS's error for an entry that does not exist."""
    acl = self.get_network_acl(network_acl_id)
    for entry in acl.network_acl_entries:
        if entry.egress == egress and entry.rule_number == rule_number:
            acl.network_acl_entries.remove(entry)
            return entry
    direction = "egress" if egress else "ingress"
    raise EC2ClientError(
        "InvalidNetworkAclEntry.NotFound",
        f"The network ACL entry identified by {rule_number} ({direction}) does not exist.",
    )


NetworkAclBackend.delete_network_acl_entry = delete_network_acl_entry


def keep_snapshot_attributes_a_set():
    """ModifyDBSnapshotAttribute adds only the values not already present."""
    modify = SnapshotAttributesMixin.modify_attribute

    def modify_as_a_set(self, attribute_name, values_to_add, values_to_remove):
        present = self.attributes.get(attribute_name, [])
        added = []
        for value in values_to_add or []:
            if value not in present and value not in added:
                added.append(value)
        return modify(self, attribute_name, added, values_to_remove)

    SnapshotAttributesMixin.modify_attribute = modify_as_a_set


# (service, account, region, token) -> (the request's parameters, the response it got).
CLIENT_TOKENS = {}
CLIENT_TOKENS_LOCK = threading.Lock()


class GuardDutyBadRequest(GuardDutyException):
    code = 400

    def __init__(self, message):
        super().__init__("BadRequestException", message)

    def get_headers(self, *args, **kwargs):
        return [("X-Amzn-ErrorType", "BadRequestException")]


def honour_client_tokens():
    """CreateDetector and CreateFlowLogs: a repeated ClientToken gets the first result back."""
    create_detector = GuardDutyResponse.create_detector
    create_flow_logs = FlowLogsResponse.create_flow_logs

    def detector_once(self):
        token = self._get_param("clientToken")
        params = json.dumps(
            {k: self._get_param(k) for k in
             ("enable", "findingPublishingFrequency", "dataSources", "features", "tags")},
            sort_keys=True,
        )
        backend = self.guardduty_backend
        with CLIENT_TOKENS_LOCK:
            key = ("guardduty", self.current_account, self.region, token)
            if token and key in CLIENT_TOKENS:
                seen, result = CLIENT_TOKENS[key]
                if seen != params:
                    raise GuardDutyBadRequest(
                        "The request is rejected because the client token was used with other parameters."
                    )
                return result
            if backend.detectors:
                raise GuardDutyBadRequest(
                    "The request is rejected because a detector already exists for the current account."
                )
            result = create_detector(self)
            if token:
                CLIENT_TOKENS[key] = (params, result)
            return result

    def flow_logs_once(self):
        token = self._get_param("ClientToken")
        params = json.dumps(
            {k: self._get_param(k) for k in
             ("ResourceType", "ResourceIds", "TrafficType", "DeliverLogsPermissionArn",
              "LogDestinationType", "LogDestination", "LogGroupName", "LogFormat",
              "MaxAggregationInterval")},
            sort_keys=True,
        )
        with CLIENT_TOKENS_LOCK:
            key = ("ec2:flow-logs", self.current_account, self.region, token)
            if token and key in CLIENT_TOKENS:
                seen, result = CLIENT_TOKENS[key]
                if seen != params:
                    raise EC2ClientError(
                        "IdempotentParameterMismatch",
                        f"The client token {token} was used with other parameters.",
                    )
                return result
            result = create_flow_logs(self)
            if token:
                CLIENT_TOKENS[key] = (params, result)
            return result

    GuardDutyResponse.create_detector = detector_once
    FlowLogsResponse.create_flow_logs = flow_logs_once


def main():
    keep_snapshot_attributes_a_set()
    honour_client_tokens()
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    inner = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def app(environ, start_response):
        denied = bucket_owner_mismatch(environ)
        if denied is not None:
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [denied]
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return inner(environ, start_response)
        with dynamodb:
            result = inner(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        return [body]

    run_simple(host, port, app, threaded=True)


if __name__ == "__main__":
    main()
