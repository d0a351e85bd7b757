"""The demo's AWS side, run with the project venv's boto3 against moto.

  demo_aws.py seed     create one violation of each kind (and SG rules that must survive) in two
                       accounts, then send the matching events in the shapes real deployments use
  demo_aws.py show     print the resources as they are now
  demo_aws.py hub      print the Security Hub finding's workflow status and note

One more bucket of the home account is reported by Security Hub instead of Config: its finding
is imported into Security Hub (BatchImportFindings) and sent in the OCSF shape ("Findings Imported
V2"), so the demo shows rectify writing each outcome back to it.

Account 123456789012 is moto's default (the controller's own account); 210987654321 is a member
reached through STS AssumeRole, as rectify reaches it.
"""

import json
import sys
import uuid
from datetime import datetime, timezone

import boto3

HOME, MEMBER = "123456789012", "210987654321"
REGION = "us-east-1"
PREFIX = sys.argv[2] if len(sys.argv) > 2 else "rectify"
STATE = ".rectify-run/demo-resources.json"


def session(account):
    if account == HOME:
        return boto3.Session(region_name=REGION)
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/rectify-remediation", RoleSessionName="demo-seed"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def config_detail(account, rule, rtype, rid):
    return {
        "resourceId": rid, "awsRegion": REGION, "awsAccountId": account, "configRuleName": rule,
        "recordVersion": "1.0", "messageType": "ComplianceChangeNotification", "resourceType": rtype,
        "configRuleARN": f"arn:aws:config:{REGION}:{account}:config-rule/config-rule-demo",
        "newEvaluationResult": {
            "evaluationResultIdentifier": {
                "evaluationResultQualifier": {"configRuleName": rule, "resourceType": rtype, "resourceId": rid},
                "orderingTimestamp": now(),
            },
            "complianceType": "NON_COMPLIANT", "resultRecordedTime": now(), "configRuleInvokedTime": now(),
            "annotation": None,
        },
        "notificationCreationTime": now(),
    }


def eventbridge(detail):
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Config Rules Compliance Change",
        "source": "aws.config", "account": detail["awsAccountId"], "time": now(), "region": REGION,
        "resources": [], "detail": detail,
    }


def sns(message):
    return {"Type": "Notification", "MessageId": str(uuid.uuid4()),
            "TopicArn": f"arn:aws:sns:{REGION}:{HOME}:config-topic", "Message": json.dumps(message),
            "Timestamp": now()}


def seed_account(account, tag):
    s = session(account)
    s3, ec2, iam = s.client("s3"), s.client("ec2"), s.client("iam")
    bucket = f"demo-{tag}-public-reports"
    s3.create_bucket(Bucket=bucket)
    # A bucket whose policy lets plain HTTP in: its statement must survive the TLS fix as written.
    logs = f"demo-{tag}-access-logs"
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_policy(Bucket=logs, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "LogDelivery", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{logs}/*"}]}))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName=f"demo-{tag}-bastion", Description="demo", VpcId=vpc)["GroupId"]
    other = ec2.create_security_group(GroupName=f"demo-{tag}-peers", Description="demo", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh from anywhere"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "private ssh stays"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https stays"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": other, "Description": "group reference stays"}]},
    ])
    user = f"demo-{tag}-deployer"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    user_id = iam.get_user(UserName=user)["User"]["UserId"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
    vpce = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3",
                                   PolicyDocument=json.dumps(policy))["VpcEndpoint"]["VpcEndpointId"]
    return {"account": account, "bucket": bucket, "logs": logs, "sg": sg, "user": user, "user_id": user_id,
            "key": key, "vpce": vpce}


def security_hub_finding(bucket):
    """Imports a Security Hub (S3.8) finding about `bucket` and returns it with its OCSF event."""
    finding_id = f"arn:aws:securityhub:{REGION}:{HOME}:security-control/S3.8/finding/{uuid.uuid4()}"
    at = now()
    asff = {
        "SchemaVersion": "2018-10-08", "Id": finding_id,
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/securityhub",
        "GeneratorId": "security-control/S3.8", "AwsAccountId": HOME, "Region": REGION,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": at, "UpdatedAt": at, "Severity": {"Label": "HIGH"},
        "Title": "S3 general purpose buckets should block public access",
        "Description": "This control checks whether an S3 general purpose bucket blocks public access.",
        "Resources": [{"Type": "AwsS3Bucket", "Id": f"arn:aws:s3:::{bucket}", "Partition": "aws", "Region": REGION}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"},
        "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
    }
    boto3.client("securityhub", region_name=REGION).batch_import_findings(Findings=[asff])
    ocsf = {
        "class_uid": 2003, "class_name": "Compliance Finding", "category_uid": 2, "activity_id": 1,
        "cloud": {"account": {"uid": HOME, "type": "AWS Account"}, "provider": "AWS", "region": REGION},
        "compliance": {"control": "S3.8", "status": "Fail", "status_id": 3},
        "finding_info": {"uid": finding_id, "title": asff["Title"], "modified_time_dt": at},
        "metadata": {"product": {"name": "Security Hub", "vendor_name": "AWS",
                                 "uid": f"arn:aws:securityhub:{REGION}::productv2/aws/securityhub"},
                     "uid": finding_id, "version": "1.6.0"},
        "resources": [{"type": "AwsS3Bucket", "uid": f"arn:aws:s3:::{bucket}", "region": REGION}],
        "severity_id": 4, "status": "New", "status_id": 1, "time_dt": at,
    }
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Findings Imported V2",
             "source": "aws.securityhub", "account": HOME, "time": at, "region": REGION,
             "resources": [], "detail": {"findings": [ocsf]}}
    return finding_id, event


def seed():
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=f"{PREFIX}-events")["QueueUrl"]
    made = [seed_account(HOME, "home"), seed_account(MEMBER, "member")]
    hub_bucket = f"rectify-demo-hub-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=hub_bucket)
    finding_id, hub_event = security_hub_finding(hub_bucket)
    made[0]["hub_bucket"], made[0]["hub_finding"] = hub_bucket, finding_id
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(hub_event))
    for r in made:
        a = r["account"]
        bodies = [
            eventbridge(config_detail(a, "s3-bucket-level-public-access-prohibited", "AWS::S3::Bucket", r["bucket"])),
            # Security Hub's copy of restricted-ssh, inside an SNS envelope.
            sns(eventbridge(config_detail(a, "securityhub-restricted-ssh-x1y2z3", "AWS::EC2::SecurityGroup", r["sg"]))),
            # Config's own SNS channel: the bare detail; IAM users are named by their unique id.
            sns(config_detail(a, "access-keys-rotated-conformance-pack-demo01", "AWS::IAM::User", r["user_id"])),
            eventbridge(config_detail(a, "vpc-endpoint-policy-not-overly-permissive", "AWS::EC2::VPCEndpoint", r["vpce"])),
            eventbridge(config_detail(a, "s3-bucket-ssl-requests-only", "AWS::S3::Bucket", r["logs"])),
        ]
        for b in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(b))
    # One body that is no event at all: it must end in the DLQ with its reason.
    sqs.send_message(QueueUrl=url, MessageBody='{"detail-type": "Config Rules Compliance Change", "detail": ')
    with open(STATE, "w") as f:
        json.dump(made, f, indent=2)
    for r in made:
        print(f"account {r['account']}: bucket {r['bucket']} (no Public Access Block), {r['sg']} (SSH open to the world),"
              f" user {r['user']} (active key {r['key']}), {r['vpce']} (policy open to *),"
              f" bucket {r['logs']} (policy without a TLS deny)")
    print(f"Security Hub: bucket {hub_bucket} (no Public Access Block), finding {finding_id} (NEW)")
    print("sent 10 Config events, 1 Security Hub (OCSF) event and 1 malformed message")


def show():
    with open(STATE) as f:
        made = json.load(f)
    for r in made:
        s = session(r["account"])
        s3, ec2, iam = s.client("s3"), s.client("ec2"), s.client("iam")
        print(f"\naccount {r['account']}")
        try:
            pab = s3.get_public_access_block(Bucket=r["bucket"])["PublicAccessBlockConfiguration"]
        except s3.exceptions.ClientError:
            pab = "none"
        print(f"  s3 {r['bucket']}: public access block {pab}")
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [r["sg"]]}])["SecurityGroupRules"]
        for rule in sorted((x for x in rules if not x["IsEgress"]), key=lambda x: x["SecurityGroupRuleId"]):
            src = rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("ReferencedGroupInfo", {}).get("GroupId")
            print(f"  sg {r['sg']}: ingress {rule['IpProtocol']} {rule['FromPort']}-{rule['ToPort']} from {src}")
        for k in iam.list_access_keys(UserName=r["user"])["AccessKeyMetadata"]:
            print(f"  iam {r['user']}: key {k['AccessKeyId']} {k['Status']}")
        ep = ec2.describe_vpc_endpoints(VpcEndpointIds=[r["vpce"]])["VpcEndpoints"][0]
        print(f"  vpce {r['vpce']}: policy {ep['PolicyDocument']}")
        print(f"  s3 {r['logs']}: policy {s3.get_bucket_policy(Bucket=r['logs'])['Policy']}")


def hub():
    with open(STATE) as f:
        finding_id = json.load(f)[0]["hub_finding"]
    found = boto3.client("securityhub", region_name=REGION).get_findings()["Findings"]
    f = next(x for x in found if x["Id"] == finding_id)
    note = f.get("Note", {})
    print(f"  finding {finding_id}")
    print(f"  workflow: {f['Workflow']['Status']}")
    print(f"  note by {note.get('UpdatedBy', '-')}: {note.get('Text', '-')}")


if __name__ == "__main__":
    {"seed": seed, "show": show, "hub": hub}[sys.argv[1]]()
