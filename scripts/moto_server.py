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
And AWS Config's PutDeliveryChannel to a bucket that does not exist fails with
NoSuchBucketException, as on AWS (moto only refuses an empty bucket name). The bucket may belong
to another account (a central log archive), so only its existence is checked.

Usage: python scripts/moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.config.models import ConfigBackend
from moto.core.exceptions import JsonRESTError
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.network_acls import NetworkAclBackend
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


def delivery_channels_need_their_bucket():
    """PutDeliveryChannel refuses a bucket that does not exist, in any account."""
    put = ConfigBackend.put_delivery_channel

    def put_to_an_existing_bucket(self, delivery_channel):
        bucket = delivery_channel.get("s3BucketName")
        if bucket and bucket not in s3_backends.bucket_accounts:
            raise JsonRESTError(
                "NoSuchBucketException", f"Cannot find a S3 bucket with name {bucket}."
            )
        return put(self, delivery_channel)

    ConfigBackend.put_delivery_channel = put_to_an_existing_bucket


def main():
    keep_snapshot_attributes_a_set()
    delivery_channels_need_their_bucket()
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
