//! rectify: corrective guardrails for AWS Organizations.
//!
//! The modules follow the data: message → finding → gates → observe → plan → apply → verify →
//! record.
//!
//! - [`source`] polls SQS with bounded concurrency ([`source::poll`]) and turns each job's
//!   disposition into the SQS call: delete once the outcome is durable, leave for a retry, or
//!   send to the DLQ with the reason ([`source::dlq`] lists and redrives it).
//! - [`event`] decodes bodies (EventBridge, SNS, Config's SNS channel, Security Hub ASFF and
//!   OCSF) into
//!   [`event::Finding`]s, validating every id that will reach an AWS call.
//! - [`catalog`] holds the remediations (manifest, script, cases) and routes a finding's rule to
//!   them; [`script`] is the hardened Rhai engine that runs `plan(resource, params)`.
//! - [`reconcile`] brings one job to a durable outcome: lock and claim, the pure
//!   [`reconcile::gates`], observe and plan, apply (inverse first, then the breaker), verify by
//!   re-planning, record; its [`reconcile::error_policy`] says what becomes of the message.
//! - [`resource`] is the registry of resource types (one file each: ids, type names, observe,
//!   enumerate); [`action`] is the typed action layer, every change with its inverse;
//!   [`cloud`] reaches member accounts (credentials and clients per account and region).
//! - [`state`] is DynamoDB (settings, jobs, claims, locks, breaker); [`audit`] the hash-chained
//!   trail, whose records are all built in [`audit::record`].
//! - Workflows: [`jobs`] (approve, reject, retry), [`settings`] (modes, parameters, allow-list,
//!   pause, exemptions), [`sweep`] (the same gates over enumerated resources), [`undo`].
//! - Edges: [`app`] starts the worker (poller, reload, periodic sweep under one task tracker);
//!   [`cli`] parses and renders, one file per command group; [`config`], [`bootstrap`],
//!   [`render`], [`notify`], [`metrics`], [`clock`], [`redact`] (secrets out of every stored
//!   state); [`organization`] lists the Organization's accounts for an allow-list set to
//!   `organization`; [`securityhub`] writes a job's outcome back to its Security Hub finding.

#![forbid(unsafe_code)]

pub mod action;
pub mod app;
pub mod audit;
pub mod bootstrap;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod event;
pub mod jobs;
pub mod metrics;
pub mod notify;
pub mod organization;
pub mod reconcile;
pub mod redact;
pub mod render;
pub mod resource;
pub mod script;
pub mod securityhub;
pub mod settings;
pub mod source;
pub mod state;
pub mod sweep;
pub mod undo;
