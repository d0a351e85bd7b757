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
And KMS key rotation follows the key as on AWS: EnableKeyRotation, DisableKeyRotation and
GetKeyRotationStatus fail with UnsupportedOperationException for a key KMS cannot rotate
(asymmetric, HMAC, imported material, a custom key store), and EnableKeyRotation and
DisableKeyRotation fail with DisabledException for a disabled key and KMSInvalidStateException
for a key pending deletion; moto accepts them all.
And PutImageScanningConfiguration without `scanOnPush` (how an SDK sends the default, false)
turns scan on push off, as on AWS; moto leaves it as it was.

And it adds the Security Hub calls rectify writes findings back with, which moto lacks, applied to
the findings BatchImportFindings stored, so GetFindings reads the result back:
- BatchUpdateFindings (PATCH /findings/batchupdate): `FindingIdentifiers` (Id, ProductArn; 1 to
  100), `Workflow.Status` (NEW, NOTIFIED, RESOLVED, SUPPRESSED) and `Note` (`Text` and `UpdatedBy`,
  each at most 512 characters, both required); a finding that is not there is returned in
  `UnprocessedFindings` with `FindingNotFound`. Invalid input fails the whole call with
  InvalidInputException, as on AWS.
- BatchUpdateFindingsV2 (PATCH /findingsv2/batchupdatev2), the OCSF form: `FindingIdentifiers`
  (`CloudAccountUid`, `FindingInfoUid`, `MetadataProductUid`) or `MetadataUids`, exactly one of
  them; `StatusId` (0-6 or 99), `SeverityId`, `Comment` (at most 512 characters), at least one of
  the three. Security Hub shows a CSPM finding in OCSF with `finding_info.uid` = its `Id` and
  `cloud.account.uid` = its `AwsAccountId`, so an identifier names the stored finding that way
  (`MetadataProductUid` must be Security Hub's product, `productv2/aws/securityhub` or the CSPM
  form). `StatusId` is kept as `Workflow.Status` (1 NEW, 2 NOTIFIED, 3 SUPPRESSED, 4 RESOLVED) and
  the comment as the `Note` (UpdatedBy `BatchUpdateFindingsV2`). Invalid input fails with
  ValidationException; a finding that is not there is unprocessed with ResourceNotFoundException.
And AWS Config's PutDeliveryChannel to a bucket that does not exist fails with
NoSuchBucketException, as on AWS (moto only refuses an empty bucket name). The bucket may belong
to another account (a central log archive), so only its existence is checked.

GuardDuty's CreateDetector and EC2's CreateFlowLogs honour their ClientToken, as AWS documents
for idempotent requests (moto ignores it): a request repeating the token of an earlier one with
the same parameters returns the earlier result (the same detector id, the same flow log ids)
and creates nothing; with other parameters it fails (IdempotentParameterMismatch on EC2,
BadRequestException on GuardDuty). And CreateDetector fails with BadRequestException when the
account already has a detector in the region: GuardDuty allows one per account and region.

An IAM user's unique id has the form AWS gives it (`AIDA` and 17 more characters, as AWS
documents for users' unique ids; moto makes 20 random lower-case characters), as roles' ids
already have theirs (`AROA`). And each RDS DB instance has a resource id of its own
(`DbiResourceId`, `db-` and 26 upper-case letters and digits, unique to the instance as AWS
documents it); moto gives every instance the same one, so an instance named by it (as AWS Config
names instances) could not be told from another.

TransactWriteItems keeps moto's checks and answers (TransactionCanceledException with one
CancellationReason per item, the item itself with ReturnValuesOnConditionCheckFailure ALL_OLD)
but, to undo a cancelled transaction, saves only the items it names instead of a deep copy of
every table it touches: moto's copy grows with the tables, so each transaction cost more than
the one before.

And it keeps a client's connection open between calls, as AWS does (HTTP/1.1 keep-alive).
werkzeug's development server closes every connection after its answer, since Python's
http.server cannot skip a body the application left unread; here the body is read whole before
the call is handled, so the next request starts where it should. A client's SDK then reuses
its connection, as against AWS, instead of opening one for every call. A request with a chunked
body still closes its connection.

Usage: python scripts/moto_server.py HOST PORT
"""

import copy
import datetime
import io
import json
import os
import random
import string
import sys
import threading

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.config.models import ConfigBackend

from moto.ec2.exceptions import EC2ClientError
from moto.ecr.models import ECRBackend
from moto.kms.models import KmsBackend
from moto.ec2.models.network_acls import NetworkAclBackend
from moto.ec2.responses.flow_logs import FlowLogs as FlowLogsResponse
from moto.guardduty.exceptions import GuardDutyException
from moto.guardduty.responses import GuardDutyResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.rds.models import SnapshotAttributesMixin
from moto.s3.models import s3_backends
from moto.securityhub import urls as securityhub_urls
from moto.securityhub.exceptions import InvalidInputException, SecurityHubClientError
from moto.securityhub.responses import SecurityHubResponse
from werkzeug.serving import WSGIRequestHandler, run_simple


class NothingLeft:
    """What werkzeug finds when, after an answer, it reads what the client sent beyond the request:
    nothing, since the request's body was read whole. What follows is the next request."""

    def read(self, size=-1):
        return b""


class KeepAlive(WSGIRequestHandler):
    """werkzeug's handler, keeping the connection open after each answer.

    werkzeug sends `Connection: close` with every answer, then reads and discards whatever the
    client sent after the request, since it cannot tell a body left unread from the next request.
    Here the body is read whole before the application sees it (as `wsgi.input`), so what is left
    on the connection is the next request: the discarding step finds nothing, and the connection
    stays open for it. A request with a chunked body is handled as werkzeug does, and closes."""

    connection_rfile = None
    # An answer goes out in two writes (head, then body); on an open connection Nagle's algorithm
    # would hold the body back until the client acknowledges the head, which it delays.
    disable_nagle_algorithm = True

    def make_environ(self):
        environ = super().make_environ()
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
            self.connection_rfile, self.rfile = self.rfile, NothingLeft()
        return environ

    def run_wsgi(self):
        try:
            super().run_wsgi()
        finally:
            if self.connection_rfile is not None:
                self.rfile, self.connection_rfile = self.connection_rfile, None

    def send_header(self, keyword, value):
        if keyword.lower() == "connection" and value.lower() == "close" and self.connection_rfile is not None:
            return
        super().send_header(keyword, value)


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


WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
# OCSF status_id -> the workflow status Security Hub CSPM shows for it.
OCSF_WORKFLOW = {1: "NEW", 2: "NOTIFIED", 3: "SUPPRESSED", 4: "RESOLVED"}
OCSF_STATUS_IDS = (0, 1, 2, 3, 4, 5, 6, 99)


class ValidationException(SecurityHubClientError):
    def __init__(self, msg):
        super().__init__("ValidationException", msg)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stored(backend, finding_id, account=None):
    for f in backend.findings:
        if f.id == finding_id and (account is None or f.data.get("AwsAccountId") == account):
            return f
    return None


def batch_update_findings(self):
    """BatchUpdateFindings over the findings moto stores."""
    op = "BatchUpdateFindings"
    body = json.loads(self.body or "{}")
    ids = body.get("FindingIdentifiers")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise InvalidInputException(op, "FindingIdentifiers must hold 1 to 100 identifiers")
    for i in ids:
        if not isinstance(i, dict) or not i.get("Id") or not i.get("ProductArn"):
            raise InvalidInputException(op, "each FindingIdentifier needs an Id and a ProductArn")
    note = body.get("Note")
    if note is not None:
        text, by = note.get("Text"), note.get("UpdatedBy")
        if not text or not by:
            raise InvalidInputException(op, "Note requires both Text and UpdatedBy")
        if len(text) > 512 or len(by) > 512:
            raise InvalidInputException(op, "Note.Text and Note.UpdatedBy are at most 512 characters")
    workflow = (body.get("Workflow") or {}).get("Status")
    if "Workflow" in body and workflow not in WORKFLOW_STATUSES:
        raise InvalidInputException(op, f"Workflow.Status must be one of {', '.join(WORKFLOW_STATUSES)}")
    updates = ("Note", "Workflow", "Severity", "VerificationState", "Confidence", "Criticality",
               "Types", "UserDefinedFields", "RelatedFindings")
    if not any(k in body for k in updates):
        raise InvalidInputException(op, "at least one attribute to update is required")
    processed, unprocessed = [], []
    for i in ids:
        f = _stored(self.securityhub_backend, i["Id"])
        if f is None or f.data.get("ProductArn") != i["ProductArn"]:
            unprocessed.append({"FindingIdentifier": i, "ErrorCode": "FindingNotFound",
                                "ErrorMessage": "Finding Not Found"})
            continue
        if note is not None:
            f.data["Note"] = {"Text": note["Text"], "UpdatedBy": note["UpdatedBy"], "UpdatedAt": _now()}
        if workflow is not None:
            f.data["Workflow"] = {"Status": workflow}
            f.data["WorkflowState"] = workflow
        for k in ("Severity", "VerificationState", "Confidence", "Criticality", "Types",
                  "UserDefinedFields", "RelatedFindings"):
            if k in body:
                f.data[k] = body[k]
        processed.append(i)
    return json.dumps({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})


def batch_update_findings_v2(self):
    """BatchUpdateFindingsV2 over the findings moto stores, named as Security Hub names them
    in OCSF."""
    body = json.loads(self.body or "{}")
    ids, uids = body.get("FindingIdentifiers"), body.get("MetadataUids")
    if (ids is None) == (uids is None):
        raise ValidationException("Provide exactly one of FindingIdentifiers and MetadataUids")
    named = ids if ids is not None else uids
    if not isinstance(named, list) or not 1 <= len(named) <= 100:
        raise ValidationException("Provide 1 to 100 findings")
    if not any(k in body for k in ("Comment", "SeverityId", "StatusId")):
        raise ValidationException("Provide at least one of Comment, SeverityId and StatusId")
    comment = body.get("Comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 512):
        raise ValidationException("Comment must be at most 512 characters")
    status = body.get("StatusId")
    if status is not None and status not in OCSF_STATUS_IDS:
        raise ValidationException(f"StatusId must be one of {OCSF_STATUS_IDS}")
    processed, unprocessed = [], []
    for i in named:
        if ids is not None:
            keys = ("CloudAccountUid", "FindingInfoUid", "MetadataProductUid")
            if not isinstance(i, dict) or not all(i.get(k) for k in keys):
                raise ValidationException("each FindingIdentifier needs " + ", ".join(keys))
            product = i["MetadataProductUid"]
            ours = product.endswith("::productv2/aws/securityhub") or product.endswith(
                "::product/aws/securityhub")
            f = _stored(self.securityhub_backend, i["FindingInfoUid"], i["CloudAccountUid"]) if ours else None
            entry = {"FindingIdentifier": i}
        else:
            f = _stored(self.securityhub_backend, i)
            entry = {"MetadataUid": i}
        if f is None:
            unprocessed.append(dict(entry, ErrorCode="ResourceNotFoundException",
                                    ErrorMessage="Finding not found"))
            continue
        if comment is not None:
            f.data["Note"] = {"Text": comment, "UpdatedBy": "BatchUpdateFindingsV2", "UpdatedAt": _now()}
        if status is not None:
            f.data["StatusId"] = status
            if status in OCSF_WORKFLOW:
                f.data["Workflow"] = {"Status": OCSF_WORKFLOW[status]}
                f.data["WorkflowState"] = OCSF_WORKFLOW[status]
        if "SeverityId" in body:
            f.data["SeverityId"] = body["SeverityId"]
        processed.append(entry)
    return json.dumps({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})


def add_security_hub_updates():
    """Routes the two update calls to the functions above."""
    securityhub_urls.url_paths["{0}/findings/batchupdate$"] = SecurityHubResponse.dispatch
    securityhub_urls.url_paths["{0}/findingsv2/batchupdatev2$"] = SecurityHubResponse.dispatch
    SecurityHubResponse.batch_update_findings = batch_update_findings
    SecurityHubResponse.batch_update_findings_v2 = batch_update_findings_v2
def rotation_as_on_aws():
    """Key rotation calls refuse the keys AWS refuses them for."""

    def rotatable(backend, key_id, change):
        key = backend.keys[backend.get_key_id(key_id)]
        if key.key_spec != "SYMMETRIC_DEFAULT" or key.origin != "AWS_KMS":
            what = (
                f"origin is {key.origin}"
                if key.origin != "AWS_KMS"
                else f"KeySpec is {key.key_spec}"
            )
            raise JsonRESTError(
                "UnsupportedOperationException",
                f"{key.arn} {what} which is not valid for this operation.",
            )
        if change and key.key_state == "Disabled":
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
        if change and key.key_state != "Enabled":
            raise JsonRESTError(
                "KMSInvalidStateException", f"{key.arn} is pending deletion."
            )

    for name, change in [
        ("enable_key_rotation", True),
        ("disable_key_rotation", True),
        ("get_key_rotation_status", False),
    ]:
        original = getattr(KmsBackend, name)

        def checked(self, key_id, *args, _original=original, _change=change, **kwargs):
            rotatable(self, key_id, _change)
            return _original(self, key_id, *args, **kwargs)

        setattr(KmsBackend, name, checked)


def scan_on_push_defaults_to_false():
    """An ImageScanningConfiguration without scanOnPush means scanOnPush=false."""
    put = ECRBackend.put_image_scanning_configuration

    def put_with_default(self, registry_id, repository_name, image_scan_config):
        config = {"scanOnPush": bool((image_scan_config or {}).get("scanOnPush", False))}
        return put(self, registry_id, repository_name, config)

    ECRBackend.put_image_scanning_configuration = put_with_default


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


def simulate_principal_policy():
    """IAM SimulatePrincipalPolicy for a role, which moto lacks: each action in ActionNames is
    evaluated on resource "*" against the role's inline and attached managed policies, as IAM
    does without a permissions boundary, resource policies or context keys: an explicit Deny
    gives explicitDeny, else an Allow gives allowed, else implicitDeny. A role that does not
    exist is NoSuchEntity. Every result is returned at once (IsTruncated false)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.responses import IamResponse

    def simulate(self):
        arn = self._get_param("PolicySourceArn")
        actions = self._get_param("ActionNames", [])
        role = self.backend.get_role_by_arn(arn)
        policies = [IAMPolicy(doc) for doc in role.policies.values()]
        policies += [IAMPolicy(p) for p in role.managed_policies.values()]
        results = []
        for action in actions:
            verdicts = [p.is_action_permitted(action) for p in policies]
            if PermissionResult.DENIED in verdicts:
                decision = "explicitDeny"
            elif PermissionResult.PERMITTED in verdicts:
                decision = "allowed"
            else:
                decision = "implicitDeny"
            results.append(
                {"EvalActionName": action, "EvalResourceName": "*", "EvalDecision": decision}
            )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    IamResponse.simulate_principal_policy = simulate


def transactions_save_only_their_items():
    """TransactWriteItems as moto does it, undone item by item on cancellation."""
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed, MockValidationException, MultipleTransactionsException,
        TooManyTransactionsException, TransactionCanceledException, TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb import models as dynamodb_models

    def transact_write_items(self, transact_items):
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        saved = []  # (table, hash, range, item before or None)
        targets = set()

        def undo():
            for table, hash_key, range_key, before in reversed(saved):
                if before is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = before
                else:
                    table.items[hash_key] = before

        errors = []
        for item in transact_items:
            original_item = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                unique = (str(table_name), str(dict(sorted(key.items()))))
                if unique in targets:
                    raise MultipleTransactionsException()
                targets.add(unique)
                current = self.get_item(table_name, key)
                if condition_expression is not None:
                    condition_op = dynamodb_models.get_filter_expression(
                        condition_expression, names, values
                    )
                    if not condition_op.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                if op_type != "ConditionCheck":
                    table = self.get_table(table_name)
                    hash_key, range_key = self.get_keys_value(table, key)
                    saved.append((table, hash_key, range_key, copy.deepcopy(current)))
                if op_type == "Put":
                    self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                                  expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Delete":
                    self.delete_item(table_name, key, condition_expression=condition_expression,
                                     expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Update":
                    self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                     condition_expression=condition_expression,
                                     expression_attribute_names=names, expression_attribute_values=values)
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                undo()
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 as moto: any other failure cancels the item
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            undo()
            raise TransactionCanceledException(errors)

    DynamoDBBackend.transact_write_items = transact_write_items


def users_have_aws_shaped_ids():
    """User ids as AWS makes them: `AIDA` and 17 more characters, 21 in all."""
    from moto.iam.models import User
    from moto.iam.utils import generate_access_key_id_from_account_id

    init = User.__init__

    def with_aws_id(self, account_id, region_name, name, path=None):
        init(self, account_id, region_name, name, path)
        self.id = generate_access_key_id_from_account_id(
            account_id=account_id, prefix="AIDA", total_length=21
        )

    User.__init__ = with_aws_id


def instances_have_their_own_resource_ids():
    """Each DB instance its own DbiResourceId, as on AWS."""
    from moto.rds.models import DBInstance

    init = DBInstance.__init__

    def with_own_id(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.dbi_resource_id = "db-" + "".join(
            random.choices(string.ascii_uppercase + string.digits, k=26)
        )

    DBInstance.__init__ = with_own_id


def main():
    users_have_aws_shaped_ids()
    instances_have_their_own_resource_ids()
    transactions_save_only_their_items()
    simulate_principal_policy()
    keep_snapshot_attributes_a_set()
    add_security_hub_updates()
    rotation_as_on_aws()
    scan_on_push_defaults_to_false()
    delivery_channels_need_their_bucket()
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

    run_simple(host, port, app, threaded=True, request_handler=KeepAlive)


if __name__ == "__main__":
    main()
