//! The catalog: remediations (manifest, script, test cases), routing and test running.
//!
//! Each remediation is a folder `remediations/<name>/` with `remediation.toml`, `plan.rhai` and
//! `tests/*.json`. The folders under `remediations/` are embedded in the binary at build time; a
//! directory given at run time adds remediations or overrides embedded ones of the same name.
//! Everything is compiled and checked when the catalog loads, and an error names the file, line
//! and column, so a broken remediation stops start-up instead of failing on the first event.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rhai::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::{ACTION_KINDS, Plan, sha256_hex};
use crate::script::{Script, ScriptError, plan_from_value};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_catalog.rs"));
}

/// How a remediation's plan is used: recorded, held for approval, executed, or not made at all.
/// Ordered from doing least to doing most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Off,
    DryRun,
    Approval,
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DryRun => "dry-run",
            Mode::Approval => "approval",
            Mode::Enforce => "enforce",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "off" => Mode::Off,
            "dry-run" => Mode::DryRun,
            "approval" => Mode::Approval,
            "enforce" => Mode::Enforce,
            other => {
                return Err(format!(
                    "unknown mode {other:?}: use off, dry-run, approval or enforce"
                ));
            }
        })
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `remediation.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    pub resource_type: String,
    /// `account` when what it changes is one setting per account although its resource type
    /// is regional (the account's S3 Public Access Block): swept once per account, and its jobs
    /// in every region share one lock. Defaults to the resource type's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::resource::Scope>,
    #[serde(default = "default_mode")]
    pub default_mode: Mode,
    /// The most a plan of this remediation may do without a person (`approval`: a fix that
    /// always needs one): an operator's higher mode is refused, and one stored by hand is
    /// lowered to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mode: Option<Mode>,
    /// The action kinds `max_mode` holds back: only a plan that takes one of them is capped
    /// (creating a trail needs a person; restarting one does not). Empty: every plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub max_mode_kinds: Vec<String>,
    /// The action kinds the script may emit; any other kind fails the job.
    pub actions: Vec<String>,
    pub triggers: Triggers,
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
}

fn default_mode() -> Mode {
    Mode::DryRun
}

/// Which Config rules route to a remediation.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Exact rule names (after suffixes are taken off).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Patterns where `*` matches any run of characters, e.g. `*vpce*polic*`.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The Security Hub control ids whose findings arrive as one of `rules` (e.g. `RDS.2` for
    /// `rds-instance-public-access-check`): each must stand for one of `rules`, and every
    /// control that stands for one of them is listed.
    #[serde(default)]
    pub controls: Vec<String>,
}

/// One parameter a script reads, with its type and bounds: a value that breaks them is refused
/// when an operator sets it, and ends a job `needs-parameter` when it is found stored.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub description: String,
    /// What the value must be: see [`ParamType`].
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The smallest value allowed (`integer`; each item of an `integer-list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// The largest value allowed (`integer`; each item of an `integer-list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// A regular expression the whole text must match (`string` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default)]
    pub default: Option<toml::Value>,
    /// With no default and no setting, the job ends `needs-parameter`.
    #[serde(default)]
    pub required: bool,
}

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamType {
    /// A whole number, within `min` and `max` when they are given.
    Integer,
    /// A non-empty array of whole numbers, each within `min` and `max` when they are given.
    IntegerList,
    /// Text, matching `pattern` (whole) when it is given.
    String,
    /// `true` or `false`, nothing else (not the text "true", not 1).
    Boolean,
}

impl ParamSpec {
    /// The rule a value must follow, as an operator reads it: "an integer from 1 to 65535".
    pub fn rule(&self) -> String {
        let bounds = match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!(" from {lo} to {hi}"),
            (Some(lo), None) => format!(" of at least {lo}"),
            (None, Some(hi)) => format!(" of at most {hi}"),
            (None, None) => String::new(),
        };
        match self.kind {
            ParamType::Integer => format!("an integer{bounds}"),
            ParamType::IntegerList => format!("a non-empty list of integers{bounds}"),
            ParamType::String => match &self.pattern {
                Some(p) => format!("text matching {p}"),
                None => "text".to_string(),
            },
            ParamType::Boolean => "true or false".to_string(),
        }
    }

    fn in_bounds(&self, v: &Value) -> bool {
        v.as_i64()
            .is_some_and(|n| self.min.is_none_or(|lo| n >= lo) && self.max.is_none_or(|hi| n <= hi))
    }

    /// Whether `value` follows the rule.
    pub fn allows(&self, value: &Value) -> bool {
        match self.kind {
            ParamType::Integer => self.in_bounds(value),
            ParamType::IntegerList => value
                .as_array()
                .is_some_and(|items| !items.is_empty() && items.iter().all(|v| self.in_bounds(v))),
            ParamType::String => value.as_str().is_some_and(|text| {
                self.pattern
                    .as_deref()
                    .is_none_or(|p| whole_pattern(p).is_ok_and(|re| re.is_match(text)))
            }),
            ParamType::Boolean => value.is_boolean(),
        }
    }

    /// What is wrong with the schema itself (bounds on the wrong type, `min` above `max`, a
    /// pattern that does not compile, a default that breaks the rule), if anything.
    fn schema_error(&self) -> Option<String> {
        let numeric = matches!(self.kind, ParamType::Integer | ParamType::IntegerList);
        if !numeric && (self.min.is_some() || self.max.is_some()) {
            return Some("`min` and `max` apply only to type integer or integer-list".into());
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max)
            && lo > hi
        {
            return Some(format!("`min` {lo} is above `max` {hi}"));
        }
        match (&self.pattern, self.kind) {
            (Some(_), ParamType::Integer | ParamType::IntegerList | ParamType::Boolean) => {
                return Some("`pattern` applies only to type string".into());
            }
            (Some(p), ParamType::String) => {
                if let Err(e) = whole_pattern(p) {
                    return Some(format!("`pattern` {p:?} is not a regular expression: {e}"));
                }
            }
            (None, _) => {}
        }
        let default = self.default.as_ref()?;
        let value = serde_json::to_value(default).unwrap_or(Value::Null);
        (!self.allows(&value)).then(|| format!("`default` {value} is not {}", self.rule()))
    }
}

/// `pattern` compiled to match the whole text, never a part of it.
fn whole_pattern(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
}

/// A parameter an operator or a stored setting gives that the manifest does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{remediation} has no parameter {name:?} (it has: {known})")]
    Unknown {
        remediation: String,
        name: String,
        known: String,
    },
    #[error("{name} = {value} is refused: {name} must be {rule}")]
    Invalid {
        name: String,
        value: String,
        rule: String,
    },
}

impl ParamError {
    /// The parameter at fault.
    pub fn name(&self) -> &str {
        match self {
            ParamError::Unknown { name, .. } | ParamError::Invalid { name, .. } => name,
        }
    }
}

/// One test case: a resource and parameters, and the plan expected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(default)]
    pub description: String,
    pub resource: Value,
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// An array of actions, or `{"actions": [...], "reason": "..."}`; a reason given here must
    /// appear in the plan's reason.
    pub expect: Value,
}

/// A loaded, compiled remediation.
#[derive(Debug)]
pub struct Remediation {
    pub manifest: Manifest,
    pub script: Script,
    /// sha256 of `plan.rhai`, recorded with every decision.
    pub script_sha256: String,
    /// `remediations` (embedded in the binary) or the directory it came from.
    pub origin: String,
    /// (file, JSON text) of each test case.
    pub cases: Vec<(String, String)>,
}

impl Remediation {
    /// Whether what it changes exists once per account or once per region: the manifest's
    /// `scope`, else its resource type's.
    pub fn scope(&self) -> crate::resource::Scope {
        self.manifest.scope.unwrap_or_else(|| {
            crate::resource::lookup(&self.manifest.resource_type)
                .map_or(crate::resource::Scope::Regional, |t| t.info().scope)
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The resource type it fixes, as AWS Config names it (`AWS::IAM::User`).
    pub fn resource_type(&self) -> &str {
        &self.manifest.resource_type
    }

    /// The mode a plan runs in: `mode`, lowered to the manifest's `max_mode` when that holds
    /// for this plan (for every plan, or for a plan taking one of `max_mode_kinds`), with why.
    pub fn capped_mode(&self, mode: Mode, plan: &Plan) -> (Mode, Option<String>) {
        match self.manifest.max_mode {
            Some(max) if mode > max => {
                let kinds = &self.manifest.max_mode_kinds;
                if kinds.is_empty() {
                    let why = format!("{} needs a person: its max_mode is {max}", self.name());
                    return (max, Some(why));
                }
                match plan
                    .actions
                    .iter()
                    .find(|a| kinds.iter().any(|k| k == a.kind()))
                {
                    Some(a) => {
                        let why = format!(
                            "{} needs a person for a plan that takes {}: its max_mode is {max}",
                            self.name(),
                            a.kind()
                        );
                        (max, Some(why))
                    }
                    None => (mode, None),
                }
            }
            _ => (mode, None),
        }
    }

    /// Why an operator may not set `mode`: above a `max_mode` that holds for every plan.
    pub fn mode_refused(&self, mode: Mode) -> Option<String> {
        match self.manifest.max_mode {
            Some(max) if mode > max && self.manifest.max_mode_kinds.is_empty() => Some(format!(
                "{} always needs a person (its manifest's max_mode is {max}): use --mode {max} or lower",
                self.name()
            )),
            _ => None,
        }
    }

    /// How `catalog list` says the cap: `approval`, or `approval when creating: k1, k2`.
    pub fn max_mode_text(&self) -> Option<String> {
        let max = self.manifest.max_mode?;
        let kinds = &self.manifest.max_mode_kinds;
        Some(if kinds.is_empty() {
            max.to_string()
        } else {
            format!("{max} for a plan that takes {}", kinds.join(", "))
        })
    }

    /// The manifest's parameter defaults as JSON.
    pub fn default_params(&self) -> serde_json::Map<String, Value> {
        self.manifest
            .params
            .iter()
            .filter_map(|(k, spec)| {
                let v = spec.default.as_ref()?;
                Some((k.clone(), serde_json::to_value(v).ok()?))
            })
            .collect()
    }

    /// The required parameters missing from `params`.
    pub fn missing_params(&self, params: &serde_json::Map<String, Value>) -> Vec<String> {
        self.manifest
            .params
            .iter()
            .filter(|(k, spec)| {
                spec.required
                    && params
                        .get(*k)
                        .is_none_or(|v| v.is_null() || v.as_str().is_some_and(str::is_empty))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Checks one parameter against the manifest: a declared name, a value that follows its
    /// rule.
    pub fn check_param(&self, name: &str, value: &Value) -> Result<(), ParamError> {
        let Some(spec) = self.manifest.params.get(name) else {
            let known: Vec<&str> = self.manifest.params.keys().map(String::as_str).collect();
            return Err(ParamError::Unknown {
                remediation: self.name().to_string(),
                name: name.to_string(),
                known: if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
            });
        };
        if spec.allows(value) {
            return Ok(());
        }
        let mut shown = value.to_string();
        if shown.chars().count() > 80 {
            shown = format!("{}…", shown.chars().take(80).collect::<String>());
        }
        Err(ParamError::Invalid {
            name: name.to_string(),
            value: shown,
            rule: spec.rule(),
        })
    }

    /// Checks every parameter a script would get (defaults merged with settings); the first
    /// one at fault, by name.
    pub fn check_params(&self, params: &serde_json::Map<String, Value>) -> Result<(), ParamError> {
        params
            .iter()
            .try_for_each(|(name, value)| self.check_param(name, value))
    }

    /// Whether a finding's rule routes here (by name, pattern, or an operator's extra triggers).
    pub fn matches(&self, resource_type: &str, rules: &[&str], extra: &[String]) -> bool {
        resource_type == self.manifest.resource_type
            && rules.iter().any(|rule| {
                self.manifest.triggers.rules.iter().any(|r| r == rule)
                    || extra.iter().any(|r| r == rule)
                    || self
                        .manifest
                        .triggers
                        .patterns
                        .iter()
                        .any(|p| glob_match(p, rule))
            })
    }

    /// Runs the script and checks the plan against the manifest's allowed actions and binds it
    /// to the resource observed (see [`crate::action::bind`]).
    pub fn plan(
        &self,
        engine: &Engine,
        resource: &Value,
        params: &serde_json::Map<String, Value>,
        deadline: std::time::Duration,
    ) -> Result<Plan, ScriptError> {
        let plan = self
            .script
            .plan(engine, resource, &Value::Object(params.clone()), deadline)?;
        if let Some(bad) = plan
            .actions
            .iter()
            .find(|a| !self.manifest.actions.iter().any(|k| k == a.kind()))
        {
            return Err(ScriptError::BadPlan {
                file: self.script.file.clone(),
                message: format!(
                    "action {} which the manifest does not allow (allowed: {})",
                    bad.kind(),
                    self.manifest.actions.join(", ")
                ),
            });
        }
        // Bound to the finding: every action acts on the resource observed, and only tightens.
        crate::action::bind::check(&self.manifest.resource_type, resource, &plan).map_err(|e| {
            ScriptError::BadPlan {
                file: self.script.file.clone(),
                message: format!("a plan rectify refuses: {e}"),
            }
        })?;
        Ok(plan)
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// A catalog that could not be loaded; the message names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}:{line}:{column}: {message}")]
    Manifest {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("{0}")]
    Layout(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// All remediations, sorted by name.
#[derive(Debug, Default)]
pub struct Catalog {
    remediations: Vec<Arc<Remediation>>,
}

/// The files of one remediation folder, as (path relative to the folder, text).
type Folder = BTreeMap<String, String>;

impl Catalog {
    /// Loads the embedded catalog, then the remediations in `dir` (which override embedded ones
    /// of the same name).
    pub fn load(engine: &Engine, dir: Option<&Path>) -> Result<Catalog, CatalogError> {
        let mut folders: BTreeMap<String, (String, Folder)> = BTreeMap::new();
        for (path, text) in embedded::FILES {
            let (name, rel) = path.split_once('/').unwrap_or((path, ""));
            folders
                .entry(name.to_string())
                .or_insert_with(|| ("remediations".to_string(), Folder::new()))
                .1
                .insert(rel.to_string(), text.to_string());
        }
        if let Some(dir) = dir {
            for (name, folder) in read_dir_folders(dir)? {
                folders.insert(name, (dir.display().to_string(), folder));
            }
        }
        let mut remediations = Vec::new();
        for (name, (root, files)) in folders {
            remediations.push(Arc::new(load_one(engine, &root, &name, &files)?));
        }
        Ok(Catalog { remediations })
    }

    pub fn all(&self) -> &[Arc<Remediation>] {
        &self.remediations
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Remediation>> {
        self.remediations.iter().find(|r| r.name() == name)
    }

    /// The remediations a finding routes to. `extra` holds operators' trigger mappings
    /// (remediation name → rule names) from settings.
    pub fn route(
        &self,
        resource_type: &str,
        rule: &str,
        rule_base: &str,
        extra: &BTreeMap<String, Vec<String>>,
    ) -> Vec<Arc<Remediation>> {
        let rules = [rule, rule_base];
        self.remediations
            .iter()
            .filter(|r| {
                let extra = extra.get(r.name()).map_or(&[][..], Vec::as_slice);
                r.matches(resource_type, &rules, extra)
            })
            .cloned()
            .collect()
    }
}

fn read_dir_folders(dir: &Path) -> Result<Vec<(String, Folder)>, CatalogError> {
    let io = |path: &Path, source| CatalogError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            // .git and other hidden folders are not remediations.
            continue;
        }
        let mut folder = Folder::new();
        for file in ["remediation.toml", "plan.rhai"] {
            let p = path.join(file);
            if p.exists() {
                folder.insert(
                    file.to_string(),
                    std::fs::read_to_string(&p).map_err(|e| io(&p, e))?,
                );
            }
        }
        let tests = path.join("tests");
        if tests.is_dir() {
            for t in std::fs::read_dir(&tests).map_err(|e| io(&tests, e))? {
                let p = t.map_err(|e| io(&tests, e))?.path();
                if p.extension().is_some_and(|e| e == "json") {
                    let rel = format!(
                        "tests/{}",
                        p.file_name().unwrap_or_default().to_string_lossy()
                    );
                    folder.insert(rel, std::fs::read_to_string(&p).map_err(|e| io(&p, e))?);
                }
            }
        }
        out.push((name, folder));
    }
    Ok(out)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn load_one(
    engine: &Engine,
    root: &str,
    name: &str,
    files: &Folder,
) -> Result<Remediation, CatalogError> {
    let manifest_file = format!("{root}/{name}/remediation.toml");
    let script_file = format!("{root}/{name}/plan.rhai");
    let layout = |what: &str| CatalogError::Layout(format!("{root}/{name}: {what}"));
    let manifest_text = files
        .get("remediation.toml")
        .ok_or_else(|| layout("no remediation.toml"))?;
    let source = files
        .get("plan.rhai")
        .ok_or_else(|| layout("no plan.rhai"))?;
    let manifest_error = |offset: usize, message: String| {
        let (line, column) = line_col(manifest_text, offset);
        CatalogError::Manifest {
            file: manifest_file.clone(),
            line,
            column,
            message,
        }
    };
    let manifest: Manifest = toml::from_str(manifest_text)
        .map_err(|e| manifest_error(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
    let key_error = |key: &str, message: String| {
        // The line that sets the key (or opens its table), not a mention of the word elsewhere.
        let mut offset = 0;
        for line in manifest_text.split_inclusive('\n') {
            let t = line.trim_start();
            if t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
                || t.starts_with(&format!("[{key}"))
            {
                break;
            }
            offset += line.len();
        }
        manifest_error(offset.min(manifest_text.len()), message)
    };
    if manifest.name != name {
        return Err(key_error(
            "name",
            format!(
                "`name` is {:?} but the folder is {name:?}; they must be equal",
                manifest.name
            ),
        ));
    }
    let Some(resource_type) = crate::resource::lookup(&manifest.resource_type) else {
        return Err(key_error(
            "resource_type",
            format!(
                "`resource_type` {:?} has no observer (known: {})",
                manifest.resource_type,
                crate::resource::config_types().join(", ")
            ),
        ));
    };
    if manifest.scope == Some(crate::resource::Scope::Regional)
        && resource_type.info().scope == crate::resource::Scope::Global
    {
        return Err(key_error(
            "scope",
            format!(
                "`scope` is \"region\" but {} is one per account: it cannot be changed per region",
                manifest.resource_type
            ),
        ));
    }
    if let Some(why) = controls_error(&manifest.triggers) {
        return Err(key_error("controls", why));
    }
    for kind in &manifest.actions {
        match ACTION_KINDS.iter().find(|k| k.kind == kind) {
            None => {
                return Err(key_error(
                    "actions",
                    format!(
                        "`actions` names unknown action kind {kind:?} (see `rectify catalog actions`)"
                    ),
                ));
            }
            Some(k) if !k.in_plans => {
                return Err(key_error(
                    "actions",
                    format!(
                        "`actions` names {kind:?}, which loosens a resource: only undo applies it, never a plan"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(why) = max_mode_error(&manifest) {
        return Err(key_error(
            if manifest.max_mode.is_none() {
                "max_mode_kinds"
            } else {
                "max_mode"
            },
            why,
        ));
    }
    for (param, spec) in &manifest.params {
        if let Some(why) = spec.schema_error() {
            // `]` closes the table name, so `[params.port]` is not found at `[params.ports]`.
            return Err(key_error(
                &format!("params.{param}]"),
                format!("parameter {param}: {why}"),
            ));
        }
    }
    if manifest.triggers.rules.is_empty() && manifest.triggers.patterns.is_empty() {
        return Err(key_error(
            "triggers",
            "`triggers` names no rule and no pattern".into(),
        ));
    }
    let script = Script::compile(engine, &script_file, source)?;
    let mut cases = Vec::new();
    for (rel, text) in files.iter().filter(|(k, _)| k.starts_with("tests/")) {
        let file = format!("{root}/{name}/{rel}");
        serde_json::from_str::<Case>(text).map_err(|e| CatalogError::Manifest {
            file: file.clone(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        cases.push((file, text.clone()));
    }
    Ok(Remediation {
        script_sha256: sha256_hex(source),
        origin: root.to_string(),
        manifest,
        script,
        cases,
    })
}

/// What is wrong with a manifest's `max_mode` and `max_mode_kinds`, if anything.
fn max_mode_error(m: &Manifest) -> Option<String> {
    let Some(max) = m.max_mode else {
        return (!m.max_mode_kinds.is_empty()).then(|| {
            "`max_mode_kinds` without `max_mode`: say which mode they are held to".into()
        });
    };
    if !matches!(max, Mode::DryRun | Mode::Approval) {
        return Some(format!(
            "`max_mode` is {max}: it must be dry-run or approval (enforce caps nothing; off is a mode, not a cap)"
        ));
    }
    if m.default_mode > max {
        return Some(format!(
            "`default_mode` {} is above `max_mode` {max}",
            m.default_mode
        ));
    }
    m.max_mode_kinds
        .iter()
        .find(|k| !m.actions.contains(k))
        .map(|k| format!("`max_mode_kinds` names {k:?}, which `actions` does not list"))
}

/// The result of one test case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: String,
    pub description: String,
    /// `None` when the case passed; otherwise what went wrong, diff included.
    pub failure: Option<String>,
}

/// Runs every test case of a remediation.
pub fn run_cases(
    engine: &Engine,
    r: &Remediation,
    deadline: std::time::Duration,
) -> Vec<CaseResult> {
    r.cases
        .iter()
        .map(|(file, text)| {
            let case: Case = match serde_json::from_str(text) {
                Ok(c) => c,
                Err(e) => {
                    return CaseResult {
                        file: file.clone(),
                        description: String::new(),
                        failure: Some(e.to_string()),
                    };
                }
            };
            let mut params = r.default_params();
            params.extend(case.params.clone());
            let failure = match (
                r.check_params(&params),
                r.plan(engine, &case.resource, &params, deadline),
                plan_from_value(case.expect.clone()),
            ) {
                (Err(e), _, _) => Some(format!("`params`: {e}")),
                (_, _, Err(e)) => Some(format!("`expect` is not a plan: {e}")),
                (_, Err(e), _) => Some(format!("the script failed: {e}")),
                (_, Ok(actual), Ok(expected)) => compare_plans(&expected, &actual),
            };
            CaseResult {
                file: file.clone(),
                description: case.description,
                failure,
            }
        })
        .collect()
}

fn compare_plans(expected: &Plan, actual: &Plan) -> Option<String> {
    let mut problems = Vec::new();
    if expected.actions != actual.actions {
        let e = serde_json::to_string_pretty(&expected.actions).unwrap_or_default();
        let a = serde_json::to_string_pretty(&actual.actions).unwrap_or_default();
        problems.push(format!(
            "actions differ (- expected, + actual):\n{}",
            line_diff(&e, &a)
        ));
    }
    if expected.needs_parameters != actual.needs_parameters {
        problems.push(format!(
            "needs_parameters: expected {:?}, got {:?}",
            expected.needs_parameters, actual.needs_parameters
        ));
    }
    if let Some(want) = &expected.reason {
        match &actual.reason {
            Some(got) if got.contains(want.as_str()) => {}
            got => problems.push(format!(
                "reason: expected one containing {want:?}, got {got:?}"
            )),
        }
    }
    if problems.is_empty() {
        None
    } else {
        Some(problems.join("\n"))
    }
}

/// Lines of context kept around each change in a [`line_diff`].
const DIFF_CONTEXT: usize = 3;

/// A unified line diff from `old` to `new`: one `@@ -a,b +c,d @@` header per hunk, at most three
/// lines of context around each change, removed lines (`- `) before the added lines (`+ `) that
/// replace them, unchanged lines indented by two spaces. Empty when the texts have the same lines.
pub fn line_diff(old: &str, new: &str) -> String {
    use std::fmt::Write;
    // A last line without its newline is still the same line.
    let ended = |t: &str| {
        if t.is_empty() || t.ends_with('\n') {
            t.to_string()
        } else {
            format!("{t}\n")
        }
    };
    let (old, new) = (ended(old), ended(new));
    let diff = similar::TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    for hunk in diff
        .unified_diff()
        .context_radius(DIFF_CONTEXT)
        .iter_hunks()
    {
        let _ = writeln!(out, "{}", hunk.header());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            let _ = writeln!(out, "{sign} {}", change.value().trim_end_matches('\n'));
        }
    }
    out
}

/// Why a manifest's `controls` do not match its `rules`: a control rectify does not know, one
/// that stands for a rule the manifest does not trigger on, or a known control of one of its
/// rules left out.
fn controls_error(triggers: &Triggers) -> Option<String> {
    for c in &triggers.controls {
        match crate::event::control_rule(c) {
            None => {
                return Some(format!(
                    "`controls` names {c:?}, a Security Hub control rectify does not route"
                ));
            }
            Some(rule) if !triggers.rules.iter().any(|r| r == rule) => {
                return Some(format!(
                    "`controls` names {c:?}, which stands for rule {rule:?}: add that rule to `rules` or drop the control"
                ));
            }
            Some(_) => {}
        }
    }
    for rule in &triggers.rules {
        if let Some(c) =
            crate::event::rule_controls(rule).find(|c| !triggers.controls.iter().any(|x| x == c))
        {
            return Some(format!(
                "`controls` leaves out {c:?}, the Security Hub control of rule {rule:?}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Limits, hardened_engine};
    use serde_json::json;

    #[test]
    fn glob() {
        assert!(glob_match("*vpce*polic*", "my-vpce-policy-check"));
        assert!(glob_match(
            "*vpc-endpoint*polic*",
            "vpc-endpoint-policy-not-overly-permissive"
        ));
        assert!(!glob_match("*vpce*polic*", "restricted-ssh"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("a*", "abc"));
        assert!(!glob_match("a*c", "abd"));
    }

    #[test]
    fn a_case_compares_the_parameters_its_plan_needs() {
        let needs = |names: &[&str]| Plan {
            needs_parameters: names.iter().map(ToString::to_string).collect(),
            ..Default::default()
        };
        assert!(compare_plans(&needs(&["bucket"]), &needs(&["bucket"])).is_none());
        let missed = compare_plans(&needs(&["bucket"]), &needs(&[])).unwrap();
        assert!(missed.contains("needs_parameters"), "{missed}");
        assert!(compare_plans(&needs(&[]), &needs(&["bucket"])).is_some());
    }

    #[test]
    fn embedded_catalog_loads_and_every_case_passes() {
        let engine = hardened_engine(&Limits::default());
        let catalog = Catalog::load(&engine, None).unwrap();
        let names: Vec<&str> = catalog.all().iter().map(|r| r.name()).collect();
        for want in [
            "iam-deactivate-stale-keys",
            "s3-block-public-access",
            "sg-revoke-open-ssh",
            "vpce-restrict-policy",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        for r in catalog.all() {
            assert!(!r.cases.is_empty(), "{} has no test cases", r.name());
            assert_eq!(r.manifest.default_mode, Mode::DryRun, "{}", r.name());
            for result in run_cases(&engine, r, std::time::Duration::from_secs(1)) {
                assert!(
                    result.failure.is_none(),
                    "{}: {}",
                    result.file,
                    result.failure.unwrap()
                );
            }
        }
    }

    #[test]
    fn routing_follows_triggers_and_types() {
        let engine = hardened_engine(&Limits::default());
        let catalog = Catalog::load(&engine, None).unwrap();
        let none = BTreeMap::new();
        let names = |t: &str, rule: &str, extra: &BTreeMap<String, Vec<String>>| -> Vec<String> {
            catalog
                .route(t, rule, &crate::event::normalise_rule(rule), extra)
                .iter()
                .map(|r| r.name().to_string())
                .collect()
        };
        assert_eq!(
            names(
                "AWS::S3::Bucket",
                "s3-bucket-public-write-prohibited",
                &none
            ),
            ["s3-block-public-access"]
        );
        assert_eq!(
            names(
                "AWS::EC2::SecurityGroup",
                "securityhub-restricted-ssh-7kq2xz",
                &none
            ),
            ["sg-revoke-open-ssh"]
        );
        assert!(
            names("AWS::S3::Bucket", "restricted-ssh", &none).is_empty(),
            "type must match"
        );
        assert_eq!(
            names(
                "AWS::EC2::VPCEndpoint",
                "vpc-endpoint-policy-not-overly-permissive",
                &none
            ),
            ["vpce-restrict-policy"]
        );
        assert!(names("AWS::EC2::VPCEndpoint", "corp-endpoint-guard", &none).is_empty());
        let extra = BTreeMap::from([(
            "vpce-restrict-policy".to_string(),
            vec!["corp-endpoint-guard".to_string()],
        )]);
        assert_eq!(
            names("AWS::EC2::VPCEndpoint", "corp-endpoint-guard", &extra),
            ["vpce-restrict-policy"]
        );
    }

    #[test]
    fn account_findings_route_by_rule_and_each_remediation_has_its_scope() {
        use crate::resource::Scope;
        let engine = hardened_engine(&Limits::default());
        let catalog = Catalog::load(&engine, None).unwrap();
        let names = |rule: &str| -> Vec<String> {
            catalog
                .route(
                    "AWS::::Account",
                    rule,
                    &crate::event::normalise_rule(rule),
                    &BTreeMap::new(),
                )
                .iter()
                .map(|r| r.name().to_string())
                .collect()
        };
        for rule in [
            "s3-account-level-public-access-blocks-periodic",
            "securityhub-s3-account-level-public-access-blocks-periodic-a1b2c3",
            "s3-account-level-public-access-blocks",
        ] {
            assert_eq!(names(rule), ["s3-account-block-public-access"], "{rule}");
        }
        for rule in [
            "ec2-ebs-encryption-by-default",
            "OrgConfigRule-ec2-ebs-encryption-by-default-x9y8",
        ] {
            assert_eq!(names(rule), ["ebs-default-encryption"], "{rule}");
        }
        assert!(names("restricted-ssh").is_empty());
        let scope = |name: &str| catalog.get(name).expect("in the catalog").scope();
        assert_eq!(scope("s3-account-block-public-access"), Scope::Global);
        assert_eq!(scope("ebs-default-encryption"), Scope::Regional);
        assert_eq!(scope("iam-deactivate-stale-keys"), Scope::Global);
        assert_eq!(scope("s3-block-public-access"), Scope::Regional);
        for name in ["s3-account-block-public-access", "ebs-default-encryption"] {
            assert_eq!(
                catalog.get(name).unwrap().manifest.default_mode,
                Mode::DryRun,
                "{name}"
            );
        }
    }

    #[test]
    fn controls_must_be_exactly_those_of_the_rules() {
        let triggers = |rules: &[&str], controls: &[&str]| Triggers {
            rules: rules.iter().map(ToString::to_string).collect(),
            patterns: vec![],
            controls: controls.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(
            controls_error(&triggers(&["rds-instance-public-access-check"], &["RDS.2"])),
            None
        );
        assert_eq!(controls_error(&triggers(&["corp-own-rule"], &[])), None);
        let err = |t| controls_error(&t).unwrap();
        assert!(
            err(triggers(&["rds-instance-public-access-check"], &[]))
                .contains("leaves out \"RDS.2\"")
        );
        assert!(
            err(triggers(
                &["rds-instance-public-access-check"],
                &["RDS.2", "RDS.1"]
            ))
            .contains("stands for rule \"rds-snapshots-public-prohibited\"")
        );
        assert!(
            err(triggers(&["restricted-ssh"], &["EC2.13", "XYZ.9"])).contains("does not route")
        );
    }

    /// Loads a custom directory holding one remediation `name` with this manifest and an empty
    /// plan, and returns the load error.
    fn load_error(name: &str, manifest: &str) -> String {
        let engine = hardened_engine(&Limits::default());
        let dir = std::env::temp_dir().join(format!("rectify-catalog-{}", uuid::Uuid::new_v4()));
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("remediation.toml"), manifest).unwrap();
        std::fs::write(folder.join("plan.rhai"), "fn plan(r, p) { [] }\n").unwrap();
        let err = Catalog::load(&engine, Some(&dir)).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        err
    }

    #[test]
    fn a_manifest_whose_controls_do_not_match_its_rules_names_file_and_line() {
        let err = load_error(
            "ctl",
            "name = \"ctl\"\ndescription = \"x\"\nresource_type = \"AWS::EC2::SecurityGroup\"\nactions = [\"ec2:RevokeSecurityGroupIngress\"]\n[triggers]\nrules = [\"restricted-ssh\"]\ncontrols = [\"S3.5\"]\n",
        );
        assert!(err.contains("ctl/remediation.toml:7"), "{err}");
        assert!(err.contains("S3.5"), "{err}");
    }

    /// sg-revoke-open-ssh with this `max_mode` and `max_mode_kinds`.
    fn capped(max: Mode, kinds: &[&str]) -> Remediation {
        let engine = hardened_engine(&Limits::default());
        let mut manifest = Catalog::load(&engine, None)
            .unwrap()
            .get("sg-revoke-open-ssh")
            .unwrap()
            .manifest
            .clone();
        manifest.max_mode = Some(max);
        manifest.max_mode_kinds = kinds.iter().map(ToString::to_string).collect();
        Remediation {
            manifest,
            script: Script::compile(&engine, "x/plan.rhai", "fn plan(r, p) { [] }").unwrap(),
            script_sha256: String::new(),
            origin: "test".into(),
            cases: vec![],
        }
    }

    #[test]
    fn max_mode_lowers_the_mode_of_the_plans_it_holds_and_refuses_operators_above_it() {
        use crate::action::Action;
        let revoke = Plan {
            actions: vec![Action::RevokeSecurityGroupIngress {
                group_id: "sg-0123456789abcdef0".into(),
                rule_id: "sgr-0123456789abcdef0".into(),
            }],
            ..Default::default()
        };
        // Every plan.
        let every = capped(Mode::Approval, &[]);
        let (mode, why) = every.capped_mode(Mode::Enforce, &revoke);
        assert_eq!(mode, Mode::Approval);
        assert!(why.unwrap().contains("max_mode is approval"));
        assert_eq!(
            every.capped_mode(Mode::DryRun, &revoke),
            (Mode::DryRun, None)
        );
        let refused = every.mode_refused(Mode::Enforce).unwrap();
        assert!(refused.contains("--mode approval"), "{refused}");
        assert_eq!(every.mode_refused(Mode::Approval), None);
        assert_eq!(every.max_mode_text().unwrap(), "approval");
        // Only plans that take a kind it names: a plan without one runs in enforce, and an
        // operator may set enforce.
        let creating = capped(Mode::Approval, &["ec2:AuthorizeSecurityGroupIngress"]);
        assert_eq!(
            creating.capped_mode(Mode::Enforce, &revoke),
            (Mode::Enforce, None)
        );
        assert_eq!(creating.mode_refused(Mode::Enforce), None);
        let held = capped(Mode::Approval, &["ec2:RevokeSecurityGroupIngress"]);
        let (mode, why) = held.capped_mode(Mode::Enforce, &revoke);
        assert_eq!(mode, Mode::Approval);
        assert!(why.unwrap().contains("ec2:RevokeSecurityGroupIngress"));
        assert!(
            held.max_mode_text()
                .unwrap()
                .contains("for a plan that takes ec2:RevokeSecurityGroupIngress")
        );
    }

    #[test]
    fn a_bad_max_mode_names_file_and_line() {
        let head = "name = \"m\"\ndescription = \"x\"\nresource_type = \"AWS::EC2::SecurityGroup\"\nactions = [\"ec2:RevokeSecurityGroupIngress\"]\n";
        let tail = "[triggers]\nrules = [\"r\"]\n";
        for (lines, line, expect) in [
            ("max_mode = \"enforce\"\n", 5, "must be dry-run or approval"),
            ("max_mode = \"off\"\n", 5, "must be dry-run or approval"),
            (
                "default_mode = \"approval\"\nmax_mode = \"dry-run\"\n",
                6,
                "above `max_mode`",
            ),
            (
                "max_mode_kinds = [\"ec2:RevokeSecurityGroupIngress\"]\n",
                5,
                "without `max_mode`",
            ),
            (
                "max_mode = \"approval\"\nmax_mode_kinds = [\"s3:PutBucketPolicy\"]\n",
                5,
                "does not list",
            ),
        ] {
            let err = load_error("m", &format!("{head}{lines}{tail}"));
            assert!(err.contains(&format!("m/remediation.toml:{line}")), "{err}");
            assert!(err.contains(expect), "{expect}: {err}");
        }
    }

    #[test]
    fn a_scope_narrower_than_the_resource_type_is_refused() {
        let err = load_error(
            "narrow",
            "name = \"narrow\"\ndescription = \"x\"\nresource_type = \"AWS::IAM::User\"\nscope = \"region\"\nactions = [\"iam:UpdateAccessKey\"]\n[triggers]\nrules = [\"r\"]\n",
        );
        assert!(err.contains("narrow/remediation.toml:4"), "{err}");
        assert!(err.contains("`scope`"), "{err}");
    }

    #[test]
    fn broken_remediations_name_file_and_line() {
        let engine = hardened_engine(&Limits::default());
        let dir = std::env::temp_dir().join(format!("rectify-catalog-{}", uuid::Uuid::new_v4()));
        let folder = dir.join("broken");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("remediation.toml"),
            "name = \"broken\"\ndescription = \"x\"\nresource_type = \"AWS::S3::Bucket\"\nactions = [\"s3:PutPublicAccessBlock\"]\n[triggers]\nrules = [\"r\"]\n",
        )
        .unwrap();
        std::fs::write(folder.join("plan.rhai"), "fn plan(r, p) {\n  [\n}\n").unwrap();
        let err = Catalog::load(&engine, Some(&dir)).unwrap_err().to_string();
        assert!(err.contains("broken/plan.rhai:3"), "{err}");
        std::fs::write(
            folder.join("remediation.toml"),
            "name = \"broken\"\ndescription = \"x\"\nresource_type = \"AWS::S3::Bucket\"\nactions = [\"s3:Nuke\"]\n[triggers]\nrules = [\"r\"]\n",
        )
        .unwrap();
        let err = Catalog::load(&engine, Some(&dir)).unwrap_err().to_string();
        assert!(
            err.contains("broken/remediation.toml:4") && err.contains("s3:Nuke"),
            "{err}"
        );
        std::fs::write(
            folder.join("remediation.toml"),
            "name = \"broken\"\ndescripton = 1\n",
        )
        .unwrap();
        let err = Catalog::load(&engine, Some(&dir)).unwrap_err().to_string();
        assert!(err.contains("broken/remediation.toml:2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn spec(toml_text: &str) -> ParamSpec {
        toml::from_str(&format!("description = \"d\"\n{toml_text}")).unwrap()
    }

    #[test]
    fn parameter_values_follow_their_type_and_bounds() {
        let port = spec("type = \"integer\"\nmin = 1\nmax = 65535");
        assert_eq!(port.rule(), "an integer from 1 to 65535");
        for ok in [json!(1), json!(22), json!(65535)] {
            assert!(port.allows(&ok), "{ok}");
        }
        for bad in [
            json!(-5),
            json!(0),
            json!(65536),
            json!(22.5),
            json!("22"),
            json!(null),
            json!([22]),
            json!(true),
            json!(u64::MAX),
        ] {
            assert!(!port.allows(&bad), "{bad}");
        }
        let days = spec("type = \"integer\"\nmin = 0");
        assert_eq!(days.rule(), "an integer of at least 0");
        assert!(days.allows(&json!(0)) && days.allows(&json!(100_000)));
        assert!(!days.allows(&json!(-1)));

        let ports = spec("type = \"integer-list\"\nmin = 1\nmax = 65535");
        assert_eq!(ports.rule(), "a non-empty list of integers from 1 to 65535");
        assert!(ports.allows(&json!([22, 3389])));
        for bad in [json!([]), json!([22, 0]), json!([22, "x"]), json!(22)] {
            assert!(!ports.allows(&bad), "{bad}");
        }

        let org = spec("type = \"string\"\npattern = \"o-[a-z0-9]{10,32}\"");
        assert_eq!(org.rule(), "text matching o-[a-z0-9]{10,32}");
        assert!(org.allows(&json!("o-a1b2c3d4e5")));
        // The pattern matches the whole text, never a part of it.
        for bad in [
            json!("o-abc"),
            json!("xo-a1b2c3d4e5"),
            json!("o-a1b2c3d4e5 "),
            json!("o-A1B2C3D4E5"),
            json!(12),
        ] {
            assert!(!org.allows(&bad), "{bad}");
        }
        assert!(spec("type = \"string\"").allows(&json!("anything")));
    }

    #[test]
    fn a_boolean_parameter_is_true_or_false_and_nothing_else() {
        let flag = spec("type = \"boolean\"\ndefault = false");
        assert_eq!(flag.kind, ParamType::Boolean);
        assert_eq!(flag.rule(), "true or false");
        assert!(flag.allows(&json!(true)) && flag.allows(&json!(false)));
        for bad in [
            json!("true"),
            json!(1),
            json!(0),
            json!(null),
            json!([true]),
        ] {
            assert!(!flag.allows(&bad), "{bad}");
        }
        assert_eq!(flag.schema_error(), None);
        assert!(
            spec("type = \"boolean\"\ndefault = \"yes\"")
                .schema_error()
                .is_some_and(|e| e.contains("is not true or false")),
            "a default that is not a boolean is refused"
        );
        assert!(
            spec("type = \"boolean\"\nmin = 0")
                .schema_error()
                .is_some_and(|e| e.contains("apply only to type integer"))
        );
        assert!(
            spec("type = \"boolean\"\npattern = \"t.*\"")
                .schema_error()
                .is_some_and(|e| e.contains("applies only to type string"))
        );
    }

    #[test]
    fn a_parameter_is_checked_by_name_and_value() {
        let engine = hardened_engine(&Limits::default());
        let catalog = Catalog::load(&engine, None).unwrap();
        let ssh = catalog.get("sg-revoke-open-ssh").unwrap();
        assert_eq!(ssh.check_param("port", &json!(2222)), Ok(()));
        let e = ssh.check_param("port", &json!(-5)).unwrap_err();
        assert_eq!(e.name(), "port");
        assert_eq!(
            e.to_string(),
            "port = -5 is refused: port must be an integer from 1 to 65535"
        );
        let e = ssh.check_param("prot", &json!(22)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sg-revoke-open-ssh has no parameter \"prot\" (it has: port)"
        );
        let vpce = catalog.get("vpce-restrict-policy").unwrap();
        assert!(
            vpce.check_param("organization_id", &json!("o-abc"))
                .unwrap_err()
                .to_string()
                .contains("must be text matching o-[a-z0-9]{10,32}")
        );
        // Every shipped parameter declares a type, and its default follows its rule.
        for r in catalog.all() {
            assert_eq!(r.check_params(&r.default_params()), Ok(()), "{}", r.name());
        }
    }

    #[test]
    fn a_bad_parameter_schema_stops_loading_naming_file_and_line() {
        let engine = hardened_engine(&Limits::default());
        let dir = std::env::temp_dir().join(format!("rectify-params-{}", uuid::Uuid::new_v4()));
        let folder = dir.join("p");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("plan.rhai"), "fn plan(r, p) { [] }\n").unwrap();
        let head = "name = \"p\"\ndescription = \"x\"\nresource_type = \"AWS::S3::Bucket\"\nactions = [\"s3:PutPublicAccessBlock\"]\n[triggers]\nrules = [\"r\"]\n[params.ports]\ndescription = \"d\"\ntype = \"integer-list\"\n";
        let cases = [
            // No type at all.
            (
                "[params.port]\ndescription = \"d\"\n",
                "p/remediation.toml:10",
                "type",
            ),
            (
                "[params.port]\ndescription = \"d\"\ntype = \"float\"\n",
                "p/remediation.toml:12",
                "float",
            ),
            (
                "[params.port]\ndescription = \"d\"\ntype = \"integer\"\nmin = 10\nmax = 1\n",
                "p/remediation.toml:10",
                "`min` 10 is above `max` 1",
            ),
            (
                "[params.port]\ndescription = \"d\"\ntype = \"string\"\nmin = 1\n",
                "p/remediation.toml:10",
                "apply only to type integer",
            ),
            (
                "[params.port]\ndescription = \"d\"\ntype = \"integer\"\npattern = \"x\"\n",
                "p/remediation.toml:10",
                "`pattern` applies only to type string",
            ),
            (
                "[params.port]\ndescription = \"d\"\ntype = \"string\"\npattern = \"o-[\"\n",
                "p/remediation.toml:10",
                "not a regular expression",
            ),
            (
                "[params.port]\ndescription = \"d\"\ntype = \"integer\"\nmin = 1\nmax = 65535\ndefault = -5\n",
                "p/remediation.toml:10",
                "`default` -5 is not an integer from 1 to 65535",
            ),
        ];
        for (param, at, what) in cases {
            std::fs::write(folder.join("remediation.toml"), format!("{head}{param}")).unwrap();
            let err = Catalog::load(&engine, Some(&dir)).unwrap_err().to_string();
            assert!(err.contains(at) && err.contains(what), "{param}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manifest_may_not_declare_a_kind_that_only_loosens() {
        let engine = hardened_engine(&Limits::default());
        for kind in [
            "s3:DeletePublicAccessBlock",
            "ec2:AuthorizeSecurityGroupIngress",
        ] {
            let dir =
                std::env::temp_dir().join(format!("rectify-catalog-{}", uuid::Uuid::new_v4()));
            let folder = dir.join("loosens");
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(
                folder.join("remediation.toml"),
                format!("name = \"loosens\"\ndescription = \"x\"\nresource_type = \"AWS::S3::Bucket\"\nactions = [\"{kind}\"]\n[triggers]\nrules = [\"r\"]\n"),
            )
            .unwrap();
            std::fs::write(folder.join("plan.rhai"), "fn plan(r, p) { [] }\n").unwrap();
            let err = Catalog::load(&engine, Some(&dir)).unwrap_err().to_string();
            assert!(
                err.contains("loosens/remediation.toml:4") && err.contains("only undo applies it"),
                "{kind}: {err}"
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn diff_marks_changed_lines() {
        let d = line_diff("a\nb\nc", "a\nx\nc");
        assert_eq!(d, "@@ -1,3 +1,3 @@\n  a\n- b\n+ x\n  c\n");
    }

    #[test]
    fn diff_trims_context_to_three_lines_and_splits_distant_changes_into_hunks() {
        let old: Vec<String> = (1..=30).map(|n| format!("line {n}")).collect();
        let mut new = old.clone();
        new[9] = "line ten".into();
        new[24] = "line twenty-five".into();
        new.insert(25, "added".into());
        let d = line_diff(&old.join("\n"), &new.join("\n"));
        assert_eq!(
            d,
            "@@ -7,7 +7,7 @@\n  line 7\n  line 8\n  line 9\n- line 10\n+ line ten\n  line 11\n  line 12\n  line 13\n\
             @@ -22,7 +22,8 @@\n  line 22\n  line 23\n  line 24\n- line 25\n+ line twenty-five\n+ added\n  line 26\n  line 27\n  line 28\n"
        );
    }

    #[test]
    fn diff_puts_removed_lines_before_added_ones_and_ignores_a_missing_last_newline() {
        let d = line_diff("keep\nold 1\nold 2\nend", "keep\nnew 1\nnew 2\nend\n");
        let signs: Vec<&str> = d.lines().skip(1).map(|l| &l[..1]).collect();
        assert_eq!(signs, [" ", "-", "-", "+", "+", " "], "{d}");
        assert_eq!(line_diff("same\nlines", "same\nlines\n"), "");
        assert_eq!(
            line_diff("", "{\n  \"a\": 1\n}"),
            "@@ -0,0 +1,3 @@\n+ {\n+   \"a\": 1\n+ }\n"
        );
    }
}
