//! rectify: corrective guardrails for AWS Organizations.
//!
//! A finding flows through the modules in this order:
//!
//! - [`worker`] polls SQS with bounded concurrency and deletes a message only once its outcome
//!   is durable; undecodable bodies go to the DLQ with their reason.
//! - [`event`] decodes bodies (EventBridge, SNS, Config's SNS channel, Security Hub ASFF) into
//!   [`event::Finding`]s, validating every id that will reach an AWS call.
//! - [`catalog`] holds the remediations (manifest, script, cases) and routes a finding's rule to
//!   them; [`script`] is the hardened Rhai engine that runs `plan(resource, params)`.
//! - [`controller`] gates (mode from [`state`] settings, failing closed), claims the job,
//!   observes the resource live through [`cloud`], plans, applies [`action::Action`]s, verifies
//!   by re-reading and re-planning, and records the outcome in [`state`] and [`audit`].
//! - [`cli`] and [`config`] are the edges; [`bootstrap`] creates the queue and tables;
//!   [`render`] prints plans and tables for people.

#![forbid(unsafe_code)]

pub mod action;
pub mod app;
pub mod audit;
pub mod bootstrap;
pub mod catalog;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod controller;
pub mod event;
pub mod jobs;
pub mod metrics;
pub mod notify;
pub mod render;
pub mod script;
pub mod settings;
pub mod source;
pub mod state;
pub mod sweep;
pub mod undo;
pub mod worker;
