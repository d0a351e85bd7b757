//! Bulk work on jobs against moto: `jobs approve|reject|retry` choose jobs by status,
//! remediation and account besides ids, show what they will do (an approval shows each plan with
//! the hash it then binds), and act only with `--yes` when not on a terminal; `settings set
//! --mode enforce` for every account shows what enforcing would change now and asks the same way.

mod support;

use serde_json::Value;
use support::*;

/// Puts s3-block-public-access in approval mode and makes a pending job for a new public bucket
/// in `account`; returns the bucket and the job.
async fn pending(env: &Env, account: &str) -> (String, Value) {
    let bucket = env.open_bucket_found(account, "bulk").await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    (bucket, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_approval_shows_each_plan_and_its_hash_and_needs_yes_off_a_terminal() {
    let env = Env::new().await;
    env.approval("s3-block-public-access").await;
    let (b1, j1) = pending(&env, HOME).await;
    let (b2, j2) = pending(&env, HOME).await;
    let (b3, j3) = pending(&env, MEMBER).await;

    // Not on a terminal and without --yes: the plans are shown, nothing is approved.
    let shown = env
        .run(&[
            "jobs",
            "approve",
            "--remediation",
            "s3-block-public-access",
            "--account",
            HOME,
            "--by",
            "alice",
        ])
        .await;
    assert_eq!(shown.code, 2, "{}\n{}", shown.stdout, shown.stderr);
    assert!(shown.stderr.contains("--yes"), "{}", shown.stderr);
    for j in [&j1, &j2] {
        let id = j["id"].as_str().unwrap();
        let hash = j["plan_hash"].as_str().unwrap();
        assert!(shown.stdout.contains(id), "{}", shown.stdout);
        assert!(
            shown.stdout.contains(&format!("plan sha256 {hash}")),
            "{}",
            shown.stdout
        );
    }
    assert!(
        shown.stdout.contains("BlockPublicAcls: false -> true"),
        "{}",
        shown.stdout
    );
    // The member account's job is not chosen by --account HOME.
    assert!(
        !shown.stdout.contains(j3["id"].as_str().unwrap()),
        "{}",
        shown.stdout
    );
    for b in [&b1, &b2, &b3] {
        assert_eq!(env.job_for(b).await["status"], "pending-approval");
    }

    // With --yes: both are approved, each bound to the hash shown, and applied by the worker.
    let out = env
        .ok(&[
            "jobs",
            "approve",
            "--remediation",
            "s3-block-public-access",
            "--account",
            HOME,
            "--by",
            "alice",
            "--yes",
        ])
        .await;
    for j in [&j1, &j2] {
        let id = j["id"].as_str().unwrap();
        assert!(out.contains(&format!("job {id}: plan ")), "{out}");
    }
    let trail = env.audit().await;
    for (b, j) in [(&b1, &j1), (&b2, &j2)] {
        let now = env.job_for(b).await;
        assert_eq!(now["status"], "approved", "{now:#}");
        assert_eq!(now["approved_by"], "alice", "{now:#}");
        assert_eq!(now["approved_plan_hash"], j["plan_hash"], "{now:#}");
        // Each names its own approval's record, in the one chain of the command.
        let record = trail
            .iter()
            .find(|r| r["job_id"] == j["id"] && r["outcome"] == "approved")
            .unwrap();
        assert_eq!(now["approved_in"], record["id"], "{now:#}");
    }
    assert_eq!(env.job_for(&b3).await["status"], "pending-approval");
    env.drain_all().await;
    for b in [&b1, &b2] {
        assert_eq!(env.job_for(b).await["status"], "applied");
        assert_eq!(
            public_access_block(&env.sdk, b).await,
            Some([true, true, true, true])
        );
    }
    assert_eq!(env.job_for(&b3).await["status"], "pending-approval");

    // A single id still approves as before, without asking; --plan-hash binds one job only.
    let refused = env
        .run(&[
            "jobs",
            "approve",
            "--account",
            MEMBER,
            "--plan-hash",
            &j3["plan_hash"].as_str().unwrap()[..12],
            "--yes",
        ])
        .await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--plan-hash"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_rejection_acts_only_on_the_jobs_the_filters_choose() {
    let env = Env::new().await;
    env.approval("s3-block-public-access").await;
    let (home_bucket, _) = pending(&env, HOME).await;
    let (member_bucket, member_job) = pending(&env, MEMBER).await;

    // Approve and reject act on pending plans only.
    let wrong = env
        .run(&[
            "jobs", "reject", "--status", "applied", "--reason", "x", "--yes",
        ])
        .await;
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("--status applied"),
        "{}",
        wrong.stderr
    );
    // Nothing named, nothing chosen.
    let none = env.run(&["jobs", "reject", "--reason", "x", "--yes"]).await;
    assert_eq!(none.code, 2, "{}", none.stderr);

    let out = env
        .ok(&[
            "jobs",
            "reject",
            "--account",
            MEMBER,
            "--reason",
            "not in this quarter",
            "--by",
            "bob",
            "--yes",
        ])
        .await;
    assert!(
        out.contains(&format!("job {}: ", member_job["id"].as_str().unwrap())),
        "{out}"
    );
    let member = env.job_for(&member_bucket).await;
    assert_eq!(member["status"], "rejected", "{member:#}");
    assert_eq!(
        env.job_for(&home_bucket).await["status"],
        "pending-approval"
    );

    // A filter that matches nothing does nothing and says so.
    let out = env
        .ok(&[
            "jobs",
            "reject",
            "--account",
            MEMBER,
            "--reason",
            "x",
            "--yes",
        ])
        .await;
    assert!(out.contains("no job matches"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_runs_every_planned_job_again_after_enforce_is_confirmed() {
    let env = Env::new().await;
    let b1 = env.bucket("retry").await;
    let b2 = env.bucket("retry").await;
    env.send_bucket_event(&b1).await;
    env.send_bucket_event(&b2).await;
    env.drain().await;
    for b in [&b1, &b2] {
        assert_eq!(env.job_for(b).await["status"], "planned");
    }

    // Enforce in every account, not on a terminal and without --yes: what it would change now
    // is shown, and nothing is set.
    let shown = env
        .run(&[
            "settings",
            "set",
            "s3-block-public-access",
            "--mode",
            "enforce",
            "--by",
            "test",
        ])
        .await;
    assert_eq!(shown.code, 2, "{}\n{}", shown.stdout, shown.stderr);
    assert!(shown.stdout.contains("what-if"), "{}", shown.stdout);
    for b in [&b1, &b2] {
        assert!(shown.stdout.contains(b.as_str()), "{}", shown.stdout);
    }
    assert!(shown.stderr.contains("--yes"), "{}", shown.stderr);
    let settings = env.json(&["settings", "list"]).await;
    let row = settings
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["remediation"] == "s3-block-public-access" && r["scope"] == "*")
        .cloned()
        .unwrap();
    assert_eq!(row["mode"], "dry-run", "{row:#}");

    // One account's enforce is not asked about.
    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--account",
        MEMBER,
        "--mode",
        "enforce",
        "--by",
        "test",
    ])
    .await;
    env.enforce("s3-block-public-access").await;

    // Retry chooses only jobs that can run again.
    let wrong = env.run(&["jobs", "retry", "--status", "applied"]).await;
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    let asked = env.run(&["jobs", "retry", "--status", "planned"]).await;
    assert_eq!(asked.code, 2, "{}", asked.stderr);
    assert!(asked.stderr.contains("--yes"), "{}", asked.stderr);
    env.ok(&[
        "jobs",
        "retry",
        "--status",
        "planned",
        "--remediation",
        "s3-block-public-access",
        "--yes",
    ])
    .await;
    env.drain_all().await;
    for b in [&b1, &b2] {
        assert_eq!(env.job_for(b).await["status"], "applied");
        assert_eq!(
            public_access_block(&env.sdk, b).await,
            Some([true, true, true, true])
        );
    }
}
