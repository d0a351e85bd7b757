//! The source of work: the SQS event queue. [`poll`] receives with bounded concurrency and
//! turns each job's [`crate::reconcile::Disposition`] into the SQS call (delete, leave, DLQ);
//! [`dlq`] lists and redrives what was dead-lettered.

pub mod dlq;
pub mod poll;
