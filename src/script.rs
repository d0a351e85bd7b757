//! The script engine: compiles remediation scripts and runs `plan(resource, params)`.
//!
//! Scripts are untrusted deciders. [`hardened_engine`] is the one place an engine is built: it
//! starts from `Engine::new_raw()` (no module resolver, no standard library), adds only the
//! packages a decider needs, turns `eval` and `import` into syntax errors, replaces `sleep` with a
//! function that fails, demands declared variables, and bounds operations, call depth, expression
//! depth, string, array and map sizes and wall-clock time. Scripts never call AWS: the host passes
//! the observed resource (with the time it was observed) and the parameters, so a plan is
//! reproducible from its inputs.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, MoreStringPackage, Package,
};
use rhai::{AST, Dynamic, Engine, EvalAltResult, Position, Scope};
use serde_json::Value;

use crate::action::{Action, Plan};

/// Limits applied to every script run.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Operations one `plan` call may take (a small plan takes a few thousand).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Nesting of expressions, at top level and inside functions.
    pub max_expr_depth: usize,
    /// Length of one string, in bytes.
    pub max_string_size: usize,
    /// Items in one array.
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
    /// Wall-clock time one `plan` call may take, in milliseconds.
    pub deadline_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 1024 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            deadline_ms: 250,
        }
    }
}

thread_local! {
    /// The deadline of the `plan` call running on this thread, read by `on_progress`.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Why a script did not give a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("{file}:{line}:{column}: {message}")]
    Compile {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Runtime { file: String, message: String },
    #[error("{file}: plan() returned {message}")]
    BadPlan { file: String, message: String },
}

/// Builds the hardened engine. Nothing else in rectify creates an `Engine`.
pub fn hardened_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(CorePackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());
    engine.register_global_module(MoreStringPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    for symbol in ["eval", "import", "export"] {
        engine.disable_symbol(symbol);
    }
    engine.set_strict_variables(true);
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.on_progress(|ops| {
        // Reading the clock on every operation would cost more than the script; every 256th is
        // fine-grained enough for a deadline in milliseconds.
        if ops % 256 == 0 {
            let late = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() > t));
            if late {
                return Some(Dynamic::from(
                    "the script ran past its deadline (script.deadline_ms)",
                ));
            }
        }
        None
    });
    engine.on_print(|text| tracing::debug!(target: "rectify::script", "{text}"));
    engine.on_debug(|text, _, pos| tracing::debug!(target: "rectify::script", %pos, "{text}"));
    register_helpers(&mut engine);
    engine
}

fn err(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        Position::NONE,
    ))
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Box<EvalAltResult>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| err(format!("{s:?} is not an RFC 3339 time")))
}

fn is_public_principal(p: &Dynamic) -> bool {
    if let Some(s) = p.clone().try_cast::<rhai::ImmutableString>() {
        return s == "*";
    }
    if let Some(map) = p.clone().try_cast::<rhai::Map>() {
        return match map.get("AWS") {
            Some(aws) => {
                if let Some(s) = aws.clone().try_cast::<rhai::ImmutableString>() {
                    s == "*"
                } else if let Some(list) = aws.clone().try_cast::<rhai::Array>() {
                    list.iter().any(|v| {
                        v.clone()
                            .try_cast::<rhai::ImmutableString>()
                            .is_some_and(|s| s == "*")
                    })
                } else {
                    false
                }
            }
            None => false,
        };
    }
    false
}

/// The helpers every script may call; documented in docs/writing-remediations.md.
fn register_helpers(engine: &mut Engine) {
    // The core package's `sleep` would block a worker thread: shadow it for every type.
    fn no_sleep() -> Result<(), Box<EvalAltResult>> {
        Err(err("sleep is not available to remediation scripts"))
    }
    engine.register_fn("sleep", |_: i64| no_sleep());
    engine.register_fn("sleep", |_: f64| no_sleep());
    engine.register_fn("sleep", |_: Dynamic| no_sleep());
    engine.register_fn("is_world_cidr", |cidr: &str| {
        cidr == "0.0.0.0/0" || cidr == "::/0"
    });
    engine.register_fn("port_range_covers", |from: i64, to: i64, port: i64| {
        // -1 (with protocol -1) means every port.
        from == -1 || to == -1 || (from <= port && port <= to)
    });
    engine.register_fn(
        "days_between",
        |earlier: &str, later: &str| -> Result<f64, Box<EvalAltResult>> {
            let (a, b) = (parse_time(earlier)?, parse_time(later)?);
            Ok((b - a).num_milliseconds() as f64 / 86_400_000.0)
        },
    );
    engine.register_fn(
        "json_decode",
        |text: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            let value: Value =
                serde_json::from_str(text).map_err(|e| err(format!("json_decode: {e}")))?;
            rhai::serde::to_dynamic(value)
        },
    );
    engine.register_fn(
        "json_encode",
        |value: Dynamic| -> Result<String, Box<EvalAltResult>> {
            let v: Value = rhai::serde::from_dynamic(&value)?;
            serde_json::to_string(&v).map_err(|e| err(format!("json_encode: {e}")))
        },
    );
    engine.register_fn("is_public_principal", |p: Dynamic| is_public_principal(&p));
    engine.register_fn(
        "cidr_contains",
        |cidr: &str, ip: &str| -> Result<bool, Box<EvalAltResult>> {
            cidr_contains(cidr, ip).map_err(err)
        },
    );
    engine.register_fn(
        "days_since",
        |time: &str, now: &str| -> Result<f64, Box<EvalAltResult>> {
            let (a, b) = (parse_time(time)?, parse_time(now)?);
            Ok((b - a).num_milliseconds() as f64 / 86_400_000.0)
        },
    );
    engine.register_fn(
        "policy_add_statement",
        |policy: &str, statement: rhai::Map| add_statement(Some(policy), statement),
    );
    engine.register_fn("policy_add_statement", |(): (), statement: rhai::Map| {
        add_statement(None, statement)
    });
    register_builders(engine);
    engine.register_fn("has_condition", |statement: rhai::Map| {
        statement.get("Condition").is_some_and(|c| {
            c.clone()
                .try_cast::<rhai::Map>()
                .is_some_and(|m| !m.is_empty())
        })
    });
}

/// The policy text with `statement` added last, every old byte kept (see
/// [`crate::action::policy::append_statement`]).
fn add_statement(policy: Option<&str>, statement: rhai::Map) -> Result<String, Box<EvalAltResult>> {
    let v: Value = rhai::serde::from_dynamic(&Dynamic::from_map(statement))?;
    let text = serde_json::to_string(&v).map_err(|e| err(format!("policy_add_statement: {e}")))?;
    crate::action::policy::append_statement(policy, &text)
        .map_err(|e| err(format!("policy_add_statement: {e}")))
}

/// Builders for each action kind a script may emit, so a typo in a field name is a call to an
/// unknown function instead of an action the host refuses later.
fn register_builders(engine: &mut Engine) {
    fn action(kind: &str, fields: &[(&str, Dynamic)]) -> rhai::Map {
        let mut m = rhai::Map::new();
        m.insert("kind".into(), Dynamic::from(kind.to_string()));
        for (k, v) in fields {
            m.insert((*k).into(), v.clone());
        }
        m
    }
    let text = |s: &str| Dynamic::from(s.to_string());
    engine.register_fn("s3_put_public_access_block", move |bucket: &str| {
        action(
            "s3:PutPublicAccessBlock",
            &[
                ("bucket", text(bucket)),
                ("block_public_acls", Dynamic::TRUE),
                ("ignore_public_acls", Dynamic::TRUE),
                ("block_public_policy", Dynamic::TRUE),
                ("restrict_public_buckets", Dynamic::TRUE),
            ],
        )
    });
    engine.register_fn(
        "ec2_revoke_ingress",
        move |group_id: &str, rule_id: &str| {
            action(
                "ec2:RevokeSecurityGroupIngress",
                &[("group_id", text(group_id)), ("rule_id", text(rule_id))],
            )
        },
    );
    engine.register_fn("ec2_revoke_egress", move |group_id: &str, rule_id: &str| {
        action(
            "ec2:RevokeSecurityGroupEgress",
            &[("group_id", text(group_id)), ("rule_id", text(rule_id))],
        )
    });
    engine.register_fn(
        "ec2_delete_nacl_entry",
        move |network_acl_id: &str, rule_number: i64, egress: bool| {
            action(
                "ec2:DeleteNetworkAclEntry",
                &[
                    ("network_acl_id", text(network_acl_id)),
                    ("rule_number", Dynamic::from(rule_number)),
                    ("egress", Dynamic::from(egress)),
                ],
            )
        },
    );
    engine.register_fn(
        "iam_set_key_status",
        move |user: &str, key: &str, status: &str| {
            action(
                "iam:UpdateAccessKey",
                &[
                    ("user_name", text(user)),
                    ("access_key_id", text(key)),
                    ("status", text(status)),
                ],
            )
        },
    );
    engine.register_fn(
        "ec2_set_endpoint_policy",
        move |endpoint: &str, document: &str| {
            action(
                "ec2:ModifyVpcEndpoint",
                &[
                    ("vpc_endpoint_id", text(endpoint)),
                    ("policy_document", text(document)),
                ],
            )
        },
    );
    engine.register_fn("s3_put_bucket_policy", move |bucket: &str, policy: &str| {
        action(
            "s3:PutBucketPolicy",
            &[("bucket", text(bucket)), ("policy", text(policy))],
        )
    });
    engine.register_fn(
        "ec2_set_http_tokens",
        move |instance: &str, tokens: &str| {
            action(
                "ec2:ModifyInstanceMetadataOptions",
                &[
                    ("instance_id", text(instance)),
                    ("http_tokens", text(tokens)),
                ],
            )
        },
    );
}

/// Whether `ip` (v4 or v6) falls inside `cidr`.
pub fn cidr_contains(cidr: &str, ip: &str) -> Result<bool, String> {
    use std::net::IpAddr;
    let (net, bits) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr:?} is not a CIDR block"))?;
    let net: IpAddr = net
        .parse()
        .map_err(|_| format!("{cidr:?} is not a CIDR block"))?;
    let bits: u32 = bits
        .parse()
        .map_err(|_| format!("{cidr:?} is not a CIDR block"))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Ok(u32::from(n) & mask == u32::from(a) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Ok(u128::from(n) & mask == u128::from(a) & mask)
        }
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            Err(format!("{cidr:?} has too many prefix bits"))
        }
        _ => Ok(false),
    }
}

/// A compiled script, ready to plan.
pub struct Script {
    /// Where the script came from, for messages (`remediations/x/plan.rhai`).
    pub file: String,
    ast: AST,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").field("file", &self.file).finish()
    }
}

impl Script {
    /// Compiles a script and checks that it defines `plan(resource, params)`.
    pub fn compile(engine: &Engine, file: &str, source: &str) -> Result<Script, ScriptError> {
        let ast = engine.compile(source).map_err(|e| {
            let pos = e.position();
            ScriptError::Compile {
                file: file.to_string(),
                line: pos.line().unwrap_or(0),
                column: pos.position().unwrap_or(0),
                message: e.err_type().to_string(),
            }
        })?;
        if !ast
            .iter_functions()
            .any(|f| f.name == "plan" && f.params.len() == 2)
        {
            return Err(ScriptError::Compile {
                file: file.to_string(),
                line: 1,
                column: 1,
                message: "the script defines no `fn plan(resource, params)`".into(),
            });
        }
        Ok(Script {
            file: file.to_string(),
            ast,
        })
    }

    /// Runs `plan(resource, params)` under the engine's limits and a wall-clock deadline. The
    /// result is an array of actions, or a map `#{actions: [...], reason: "..."}`.
    pub fn plan(
        &self,
        engine: &Engine,
        resource: &Value,
        params: &Value,
        deadline: Duration,
    ) -> Result<Plan, ScriptError> {
        let runtime = |message: String| ScriptError::Runtime {
            file: self.file.clone(),
            message,
        };
        let resource = rhai::serde::to_dynamic(resource).map_err(|e| runtime(e.to_string()))?;
        let params = rhai::serde::to_dynamic(params).map_err(|e| runtime(e.to_string()))?;
        DEADLINE.with(|d| d.set(Some(Instant::now() + deadline)));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.call_fn::<Dynamic>(&mut Scope::new(), &self.ast, "plan", (resource, params))
        }));
        DEADLINE.with(|d| d.set(None));
        let output = match result {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Err(runtime(describe_eval_error(&e))),
            Err(_) => return Err(runtime("the script engine panicked".into())),
        };
        let value: Value =
            rhai::serde::from_dynamic(&output).map_err(|e| ScriptError::BadPlan {
                file: self.file.clone(),
                message: e.to_string(),
            })?;
        plan_from_value(value).map_err(|message| ScriptError::BadPlan {
            file: self.file.clone(),
            message,
        })
    }
}

fn describe_eval_error(e: &EvalAltResult) -> String {
    let pos = e.position();
    let at = match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        (Some(l), None) => format!(" (line {l})"),
        _ => String::new(),
    };
    let text = match e {
        EvalAltResult::ErrorTooManyOperations(_) => {
            "Too many operations: the script exceeded script.max_operations".to_string()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "Stack overflow: the script exceeded script.max_call_levels".to_string()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "{what} too large: the script exceeded script.max_string_size, max_array_size or max_map_size"
        ),
        EvalAltResult::ErrorTerminated(reason, _) => {
            format!(
                "stopped: {}",
                reason.clone().into_string().unwrap_or_default()
            )
        }
        EvalAltResult::ErrorRuntime(value, _) => {
            format!(
                "threw {}",
                value
                    .clone()
                    .into_string()
                    .unwrap_or_else(|_| value.to_string())
            )
        }
        EvalAltResult::ErrorInFunctionCall(name, _, inner, _) => {
            format!("in {name}(): {}", describe_eval_error(inner))
        }
        // Rhai's own text already names the position.
        other => return other.to_string(),
    };
    format!("{text}{at}")
}

/// Turns a script's return value into a [`Plan`].
pub fn plan_from_value(value: Value) -> Result<Plan, String> {
    let mut needs_parameters = Vec::new();
    let (actions, reason) = match value {
        Value::Array(items) => (items, None),
        Value::Object(mut map) => {
            let reason = match map.remove("reason") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(other) => return Err(format!("a `reason` that is not a string: {other}")),
            };
            let actions = match map.remove("actions") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items,
                Some(_) => return Err("`actions` that is not an array".into()),
            };
            match map.remove("needs_parameters") {
                None | Some(Value::Null) => {}
                Some(Value::Array(names)) => {
                    for name in names {
                        match name {
                            Value::String(n) if !n.is_empty() => needs_parameters.push(n),
                            other => {
                                return Err(format!(
                                    "a `needs_parameters` item that is not a parameter name: {other}"
                                ));
                            }
                        }
                    }
                    if !actions.is_empty() && !needs_parameters.is_empty() {
                        return Err(
                            "both `actions` and `needs_parameters`: a plan that lacks a parameter takes no action"
                                .into(),
                        );
                    }
                }
                Some(_) => return Err("`needs_parameters` that is not an array".into()),
            }
            if let Some(key) = map.keys().next() {
                return Err(format!("a map with an unknown key `{key}`"));
            }
            (actions, reason)
        }
        Value::Null => {
            return Err(
                "nothing: return an array of actions ([] when compliant) or #{actions, reason}"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "{other}, which is neither an array of actions nor #{{actions, reason}}"
            ));
        }
    };
    let actions = actions
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_value::<Action>(a.clone())
                .map_err(|e| format!("action {} ({a}) is not valid: {e}", i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        actions,
        reason,
        needs_parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, resource: Value) -> Result<Plan, ScriptError> {
        let engine = hardened_engine(&Limits::default());
        let script = Script::compile(&engine, "test.rhai", src)?;
        script.plan(&engine, &resource, &json!({}), Duration::from_millis(200))
    }

    #[test]
    fn returns_actions_and_reasons() {
        let plan = run(
            r#"fn plan(r, p) { [#{kind: "s3:DeletePublicAccessBlock", bucket: r.bucket}] }"#,
            json!({"bucket": "b"}),
        )
        .unwrap();
        assert_eq!(
            plan.actions,
            vec![Action::DeletePublicAccessBlock { bucket: "b".into() }]
        );
        let none = run(
            r#"fn plan(r, p) { #{actions: [], reason: "in use"} }"#,
            json!({}),
        )
        .unwrap();
        assert_eq!(none.reason.as_deref(), Some("in use"));
        assert!(none.is_empty());
    }

    #[test]
    fn a_plan_may_name_the_parameters_it_lacks() {
        let plan = run(
            r#"fn plan(r, p) { #{needs_parameters: ["bucket"], reason: "no trail exists"} }"#,
            serde_json::json!({}),
        )
        .unwrap();
        assert_eq!(plan.needs_parameters, ["bucket"]);
        assert!(plan.is_empty());
        for bad in [
            r#"fn plan(r, p) { #{needs_parameters: "bucket"} }"#,
            r"fn plan(r, p) { #{needs_parameters: [1]} }",
            r#"fn plan(r, p) { #{needs_parameters: ["bucket"], actions: [#{kind: "s3:DeletePublicAccessBlock", bucket: "b"}]} }"#,
        ] {
            assert!(run(bad, serde_json::json!({})).is_err(), "{bad}");
        }
    }

    #[test]
    fn compile_errors_name_file_line_and_column() {
        let engine = hardened_engine(&Limits::default());
        let err =
            Script::compile(&engine, "x/plan.rhai", "fn plan(r, p) {\n  let = 3;\n}").unwrap_err();
        match err {
            ScriptError::Compile { file, line, .. } => {
                assert_eq!(file, "x/plan.rhai");
                assert_eq!(line, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(Script::compile(&engine, "x", "fn other(a) { a }").is_err());
    }

    #[test]
    fn hostile_constructs_are_refused() {
        let engine = hardened_engine(&Limits::default());
        for src in [
            r#"fn plan(r, p) { eval("1") }"#,
            r#"import "/etc/passwd" as x; fn plan(r, p) { [] }"#,
            r"fn plan(r, p) { undefined_var }",
        ] {
            assert!(Script::compile(&engine, "x", src).is_err(), "{src}");
        }
        for src in [
            "fn plan(r, p) { loop {} }",
            "fn f(n) { f(n + 1) } fn plan(r, p) { f(0) }",
            r#"fn plan(r, p) { let s = "x"; loop { s += s; } }"#,
            "fn plan(r, p) { let a = []; loop { a.push(1); } }",
            "fn plan(r, p) { sleep(10); [] }",
            "fn plan(r, p) { sleep(0.5); [] }",
            r#"fn plan(r, p) { throw "no"; }"#,
            r"fn plan(r, p) { 42 }",
            "fn plan(r, p) { let x = 1; }",
            r#"fn plan(r, p) { [#{kind: "iam:DeleteUser", user_name: "x"}] }"#,
        ] {
            assert!(run(src, json!({})).is_err(), "{src}");
        }
    }

    #[test]
    fn deadline_stops_a_slow_script() {
        let limits = Limits {
            max_operations: 0,
            ..Limits::default()
        };
        let engine = hardened_engine(&limits);
        let script = Script::compile(&engine, "x", "fn plan(r, p) { loop {} }").unwrap();
        let start = Instant::now();
        let err = script
            .plan(&engine, &json!({}), &json!({}), Duration::from_millis(50))
            .unwrap_err();
        assert!(err.to_string().contains("deadline"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn helpers() {
        let src = r#"
            fn plan(r, p) {
                if !is_world_cidr("0.0.0.0/0") || is_world_cidr("10.0.0.0/8") { throw "cidr"; }
                if !port_range_covers(0, 65535, 22) || port_range_covers(443, 443, 22) { throw "ports"; }
                if !port_range_covers(-1, -1, 22) { throw "all"; }
                if days_between("2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z") != 30.0 { throw "days"; }
                let doc = json_decode("{\"Statement\":[{\"Principal\":{\"AWS\":[\"*\"]}}]}");
                if !is_public_principal(doc.Statement[0].Principal) { throw "principal"; }
                if is_public_principal(#{AWS: "arn:aws:iam::1:root"}) { throw "principal2"; }
                if has_condition(doc.Statement[0]) { throw "cond"; }
                if json_encode(#{a: 1}) != "{\"a\":1}" { throw "encode"; }
                if !cidr_contains("10.0.0.0/8", "10.1.2.3") || cidr_contains("10.0.0.0/8", "11.0.0.1") { throw "contains"; }
                if !cidr_contains("::/0", "2001:db8::1") || cidr_contains("0.0.0.0/0", "::1") { throw "v6"; }
                if days_since("2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z") != 1.5 { throw "since"; }
                let a = ec2_revoke_ingress("sg-1", "sgr-1");
                if a.kind != "ec2:RevokeSecurityGroupIngress" || a.rule_id != "sgr-1" { throw "builder"; }
                []
            }"#;
        run(src, json!({})).unwrap();
    }
}
