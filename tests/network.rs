//! Network remediations end to end against moto: a VPC's default security group closed (and
//! left alone while interfaces use it), and network ACL entries that open SSH or RDP to the
//! world deleted. Each in enforce (fixed, and what must survive survives), dry-run (nothing
//! changes) and undo (restored exactly), read back from moto through the SDK.

mod support;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, PortRange, RuleAction, UserIdGroupPair};
use support::*;

/// One security group rule as compared here: (egress, protocol, from, to, peer, description).
type Rule = (bool, String, i32, i32, String, String);

/// A new VPC and its default security group.
async fn vpc_and_default_group(ec2: &Client) -> (String, String) {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let group = groups.security_groups()[0].group_id().unwrap().to_string();
    (vpc_id, group)
}

/// Gives a default group the rules AWS gives one (all traffic from the group itself, all
/// traffic out) plus a described SSH rule in and a described HTTPS rule out.
async fn open_default_group(ec2: &Client, group: &str) {
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("-1")
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(group).build())
                .build(),
        )
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    IpRange::builder()
                        .cidr_ip("203.0.113.0/24")
                        .description("bastion")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_egress()
        .group_id(group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(
                    IpRange::builder()
                        .cidr_ip("10.0.0.0/8")
                        .description("https out")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// A group's rules, both directions, without their ids, sorted.
async fn rules(ec2: &Client, group: &str) -> Vec<Rule> {
    let out = ec2
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await
        .unwrap();
    let mut rules: Vec<Rule> = out
        .security_group_rules()
        .iter()
        .filter(|r| r.group_id() == Some(group))
        .map(|r| {
            let peer = r
                .cidr_ipv4()
                .or(r.cidr_ipv6())
                .or(r.referenced_group_info().and_then(|g| g.group_id()))
                .or(r.prefix_list_id())
                .unwrap_or("?");
            (
                r.is_egress().unwrap_or(false),
                r.ip_protocol().unwrap_or("?").to_string(),
                r.from_port().unwrap_or(-1),
                r.to_port().unwrap_or(-1),
                peer.to_string(),
                r.description().unwrap_or("").to_string(),
            )
        })
        .collect();
    rules.sort();
    rules
}

async fn default_sg_event(env: &Env, group: &str) {
    env.send(&config_event(
        HOME,
        "vpc-default-security-group-closed",
        "AWS::EC2::SecurityGroup",
        group,
    ))
    .await;
    env.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_group_is_closed_by_rule_id_other_groups_stay_and_undo_restores_it() {
    let env = Env::new().await;
    let ec2 = Client::new(&env.sdk);
    let (vpc, group) = vpc_and_default_group(&ec2).await;
    open_default_group(&ec2, &group).await;
    let before = rules(&ec2, &group).await;
    assert_eq!(before.len(), 4, "{before:#?}");
    assert!(before.contains(&(false, "-1".into(), -1, -1, group.clone(), String::new())));
    // A group of its own in the same VPC, open the same way: never touched.
    let web = ec2
        .create_security_group()
        .group_name("web")
        .description("web")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    open_tcp(&env.sdk, &web, 22, 22, "0.0.0.0/0").await;
    let web_before = rules(&ec2, &web).await;

    env.enforce("ec2-default-sg-closed").await;
    default_sg_event(&env, &group).await;
    default_sg_event(&env, &web).await;
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        rules(&ec2, &group).await,
        Vec::<Rule>::new(),
        "the group is closed"
    );
    let kinds: Vec<&str> = job["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupEgress"
        ]
    );
    assert_eq!(job["before"]["network_interfaces"], serde_json::json!([]));
    let web_job = env.job_for(&web).await;
    assert_eq!(web_job["status"], "no-op", "{web_job:#}");
    assert_eq!(
        rules(&ec2, &web).await,
        web_before,
        "a non-default group stays"
    );

    let id = job["id"].as_str().unwrap();
    let out = env
        .ok(&["jobs", "undo", id, "--by", "auditor", "--reason", "r"])
        .await;
    assert!(out.contains("undone"), "{out}");
    assert_eq!(
        rules(&ec2, &group).await,
        before,
        "every rule is back, with its peer and description"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_group_in_use_is_left_naming_its_interfaces_unless_even_if_in_use() {
    let env = Env::new().await;
    let ec2 = Client::new(&env.sdk);
    let (vpc, group) = vpc_and_default_group(&ec2).await;
    open_default_group(&ec2, &group).await;
    let before = rules(&ec2, &group).await;
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.1.1.0/24")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let eni = ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .groups(&group)
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string();

    env.enforce("ec2-default-sg-closed").await;
    default_sg_event(&env, &group).await;
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "no-op", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains(&eni) && reason.contains("even_if_in_use"),
        "{reason}"
    );
    assert_eq!(
        rules(&ec2, &group).await,
        before,
        "a group in use stays open"
    );

    let r = env
        .run(&[
            "settings",
            "set",
            "ec2-default-sg-closed",
            "--param",
            "even_if_in_use=yes",
            "--by",
            "test",
        ])
        .await;
    assert_ne!(r.code, 0, "a parameter that is not a boolean is refused");
    assert!(r.stderr.contains("true or false"), "{}", r.stderr);

    env.param("ec2-default-sg-closed", "even_if_in_use=true")
        .await;
    default_sg_event(&env, &group).await;
    let mut statuses: Vec<String> = env
        .jobs()
        .await
        .into_iter()
        .filter(|j| j["resource_id"] == group.as_str())
        .map(|j| j["status"].as_str().unwrap_or("?").to_string())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["applied", "no-op"]);
    assert_eq!(rules(&ec2, &group).await, Vec::<Rule>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_group_in_dry_run_is_planned_and_not_changed() {
    let env = Env::new().await;
    let ec2 = Client::new(&env.sdk);
    let (_, group) = vpc_and_default_group(&ec2).await;
    open_default_group(&ec2, &group).await;
    let before = rules(&ec2, &group).await;
    default_sg_event(&env, &group).await;
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    assert_eq!(job["mode"], "dry-run");
    assert_eq!(job["plan"]["actions"].as_array().unwrap().len(), 4);
    assert_eq!(rules(&ec2, &group).await, before);
}

/// One network ACL entry as compared here: (egress, number, protocol, action, cidr, ports).
type Entry = (bool, i32, String, String, String, Option<(i32, i32)>);

/// A new VPC's default network ACL (100 allow all and 32767 deny, each way) with these inbound
/// entries added: a deny of world SSH, SSH from a private range, world udp 3000-4000 (covers
/// RDP), world HTTPS, and all traffic from ::/0.
async fn open_acl(ec2: &Client) -> String {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.2.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let acls = ec2
        .describe_network_acls()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .filters(Filter::builder().name("default").values("true").build())
        .send()
        .await
        .unwrap();
    let acl = acls.network_acls()[0].network_acl_id().unwrap().to_string();
    for (n, protocol, action, cidr, ports) in [
        (90, "6", RuleAction::Deny, "0.0.0.0/0", Some((22, 22))),
        (105, "6", RuleAction::Allow, "10.0.0.0/8", Some((22, 22))),
        (
            110,
            "17",
            RuleAction::Allow,
            "0.0.0.0/0",
            Some((3000, 4000)),
        ),
        (115, "6", RuleAction::Allow, "0.0.0.0/0", Some((443, 443))),
        (120, "-1", RuleAction::Allow, "::/0", None),
    ] {
        let mut call = ec2
            .create_network_acl_entry()
            .network_acl_id(&acl)
            .rule_number(n)
            .egress(false)
            .protocol(protocol)
            .rule_action(action);
        call = if cidr.contains(':') {
            call.ipv6_cidr_block(cidr)
        } else {
            call.cidr_block(cidr)
        };
        if let Some((from, to)) = ports {
            call = call.port_range(PortRange::builder().from(from).to(to).build());
        }
        call.send().await.unwrap();
    }
    acl
}

async fn entries(ec2: &Client, acl: &str) -> Vec<Entry> {
    let out = ec2
        .describe_network_acls()
        .network_acl_ids(acl)
        .send()
        .await
        .unwrap();
    let mut entries: Vec<Entry> = out.network_acls()[0]
        .entries()
        .iter()
        .map(|e| {
            (
                e.egress().unwrap_or(false),
                e.rule_number().unwrap_or(-1),
                e.protocol().unwrap_or("?").to_string(),
                e.rule_action().map_or("?", RuleAction::as_str).to_string(),
                e.cidr_block()
                    .or(e.ipv6_cidr_block())
                    .unwrap_or("?")
                    .to_string(),
                e.port_range()
                    .map(|r| (r.from().unwrap_or(-1), r.to().unwrap_or(-1))),
            )
        })
        .collect();
    entries.sort();
    entries
}

fn numbers(entries: &[Entry], egress: bool) -> Vec<i32> {
    entries
        .iter()
        .filter(|e| e.0 == egress)
        .map(|e| e.1)
        .collect()
}

async fn nacl_event(env: &Env, acl: &str) {
    env.send(&config_event(
        HOME,
        "nacl-no-unrestricted-ssh-rdp",
        "AWS::EC2::NetworkAcl",
        acl,
    ))
    .await;
    env.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_open_admin_port_entries_are_deleted_deny_and_other_entries_stay_and_undo_restores_them()
 {
    let env = Env::new().await;
    let ec2 = Client::new(&env.sdk);
    let acl = open_acl(&ec2).await;
    let before = entries(&ec2, &acl).await;
    assert_eq!(
        numbers(&before, false),
        [90, 100, 105, 110, 115, 120, 32767]
    );

    env.enforce("nacl-revoke-open-admin-ports").await;
    nacl_event(&env, &acl).await;
    let job = env.job_for(&acl).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    let after = entries(&ec2, &acl).await;
    // Gone: all traffic from anywhere (100), udp 3000-4000 (covers 3389), all from ::/0.
    assert_eq!(numbers(&after, false), [90, 105, 115, 32767]);
    assert_eq!(numbers(&after, true), [100, 32767], "outbound entries stay");
    for kept in &after {
        assert!(before.contains(kept), "{kept:?} changed");
    }
    assert_eq!(job["inverse"][0]["kind"], "ec2:CreateNetworkAclEntry");

    let id = job["id"].as_str().unwrap();
    let out = env
        .ok(&["jobs", "undo", id, "--by", "auditor", "--reason", "r"])
        .await;
    assert!(out.contains("undone"), "{out}");
    assert_eq!(
        entries(&ec2, &acl).await,
        before,
        "each entry is back with its number, protocol, ports, action and CIDR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_acl_in_dry_run_is_planned_and_not_changed() {
    let env = Env::new().await;
    let ec2 = Client::new(&env.sdk);
    let acl = open_acl(&ec2).await;
    let before = entries(&ec2, &acl).await;
    nacl_event(&env, &acl).await;
    let job = env.job_for(&acl).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    let planned: Vec<i64> = job["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule_number"].as_i64().unwrap())
        .collect();
    assert_eq!(planned, [100, 110, 120]);
    assert_eq!(entries(&ec2, &acl).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_lists_network_acls_and_what_if_counts_the_open_ones() {
    // An account no other test uses: the sweep enumerates every network ACL in it.
    const SWEPT: &str = "777788889999";
    let env = Env::new().await;
    env.allow(&[SWEPT]).await;
    let member = env.account(SWEPT).await;
    let ec2 = Client::new(&member);
    let open = open_acl(&ec2).await;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.3.0.0/16")
        .send()
        .await
        .unwrap();
    let closed = ec2
        .create_network_acl()
        .vpc_id(vpc.vpc().unwrap().vpc_id().unwrap())
        .send()
        .await
        .unwrap()
        .network_acl()
        .unwrap()
        .network_acl_id()
        .unwrap()
        .to_string();
    let before = entries(&ec2, &open).await;
    let report = env
        .json(&[
            "sweep",
            "--what-if",
            "--account",
            SWEPT,
            "--remediation",
            "nacl-revoke-open-admin-ports",
        ])
        .await;
    let line = &report.as_array().unwrap()[0];
    let which: Vec<&str> = line["would_change"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["resource_id"].as_str().unwrap())
        .collect();
    assert!(which.contains(&open.as_str()), "{line:#}");
    assert!(!which.contains(&closed.as_str()), "{line:#}");
    assert!(line["scanned"].as_u64().unwrap() >= 2, "{line:#}");
    assert_eq!(
        entries(&ec2, &open).await,
        before,
        "--what-if changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_entry_already_gone_is_refused_by_name_as_aws_does() {
    // The delete action counts InvalidNetworkAclEntry.NotFound as done: the local AWS must
    // answer with that code, not an internal error.
    let env = Env::new().await;
    let ec2 = Client::new(&env.sdk);
    let acl = open_acl(&ec2).await;
    let delete = || {
        ec2.delete_network_acl_entry()
            .network_acl_id(&acl)
            .rule_number(110)
            .egress(false)
            .send()
    };
    delete().await.unwrap();
    let err = delete().await.unwrap_err();
    let code = aws_sdk_ec2::error::ProvideErrorMetadata::code(&err).map(str::to_string);
    assert_eq!(
        code.as_deref(),
        Some("InvalidNetworkAclEntry.NotFound"),
        "{err:?}"
    );
    // The same entry number in the other direction is another entry.
    assert!(numbers(&entries(&ec2, &acl).await, true).contains(&100));
}
