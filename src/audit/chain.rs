//! A writer's chain: conditional puts on (chain, seq), and the shared anchor chain that records
//! each writer's head so that a cut tail is noticed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::sync::Mutex;

use super::record::{GENESIS, Record, RecordKind, RecordOutcome, redact_record};
use crate::clock::now_text;
use crate::cloud::classify;
use crate::state::{Job, Recorded, RecordedWrite, StateError, Store};

/// The chain in which writers record their heads.
pub const ANCHORS: &str = "anchors";
/// How the chain of one command (an operator's decision) begins.
const COMMAND: &str = "c-";
/// How a chain the reconcile pipeline writes begins: a worker's, and a sweep's or an undo's,
/// which run the pipeline for a command (their records name its identity, but a record of the
/// pipeline's never vouches for an approval).
const PIPELINE: &str = "w-";

/// Whether `chain` is one command's: the only chains an approval is recorded in.
pub fn is_command_chain(chain: &str) -> bool {
    chain.starts_with(COMMAND)
}
/// A writer anchors its head after this many records (and when it stops), unless configured.
const ANCHOR_EVERY: u64 = 10;
/// How often a running worker anchors when it has nothing new to anchor, so that the newest
/// anchor is never older than this while a worker runs (`audit verify --max-anchor-age`).
pub const IDLE_ANCHOR: Duration = Duration::from_secs(60);

/// Appends records to this writer's chain.
pub struct AuditWriter {
    ddb: Client,
    table: String,
    chain: String,
    head: Mutex<(u64, String)>,
    /// The sequence number of the newest record written, and of the newest an anchor covers:
    /// the records between them are unanchored.
    written: AtomicU64,
    anchored: AtomicU64,
    anchor_every: u64,
    /// When this writer last anchored (or started).
    last_anchor: std::sync::Mutex<Instant>,
    /// The shared anchor chain's head as this writer last wrote it (read again when unknown,
    /// or when another writer has appended since). Held while this writer anchors, so its
    /// anchors take turns instead of racing each other for the same sequence number.
    anchors_head: Mutex<Option<(u64, String)>>,
    /// A prepared record was dropped unwritten, perhaps after a write whose answer was lost:
    /// whether it is in the table is not known, so the chain's head is read again before the
    /// next record is made.
    uncertain: AtomicBool,
    /// The AWS identity a command's records name (`None` for a worker's).
    identity: Option<String>,
}

impl AuditWriter {
    /// A new chain of the reconcile pipeline for this process, anchored after every 10 records.
    pub fn new(ddb: Client, table: String) -> AuditWriter {
        AuditWriter::named(ddb, table, PIPELINE)
    }

    /// A new chain whose name begins with `prefix`.
    fn named(ddb: Client, table: String, prefix: &str) -> AuditWriter {
        let chain = format!(
            "{prefix}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        AuditWriter {
            ddb,
            table,
            chain,
            head: Mutex::new((0, GENESIS.to_string())),
            written: AtomicU64::new(0),
            anchored: AtomicU64::new(0),
            anchor_every: ANCHOR_EVERY,
            last_anchor: std::sync::Mutex::new(Instant::now()),
            anchors_head: Mutex::new(None),
            uncertain: AtomicBool::new(false),
            identity: None,
        }
    }

    /// This writer anchors its head after every `records` records (at least 1).
    #[must_use]
    pub fn anchored_every(mut self, records: u64) -> AuditWriter {
        self.anchor_every = records.max(1);
        self
    }

    /// A chain for one command run as AWS identity `identity`: its name says so
    /// ([`is_command_chain`]), each of its records names that identity (beside an actor that
    /// may be a label), and its head is anchored after every record.
    pub fn for_command(ddb: Client, table: String, identity: String) -> AuditWriter {
        AuditWriter::named(ddb, table, COMMAND)
            .anchored_every(1)
            .on_behalf_of(identity)
    }

    /// Each record this writer makes names AWS identity `identity`, the one the command that
    /// makes it runs as (format 3).
    #[must_use]
    pub fn on_behalf_of(mut self, identity: String) -> AuditWriter {
        self.identity = Some(identity);
        self
    }

    /// Records this writer's head (sequence and hash) in the shared anchor chain, so that
    /// `verify` notices records cut from the end of this chain. Called every N records, by a
    /// running worker at most T seconds after a record (see [`Self::anchor_if_due`]), when a
    /// worker stops, and after every command that writes.
    pub async fn anchor(&self) -> Result<(), StateError> {
        let (seq, hash) = self.head.lock().await.clone();
        if seq == 0 {
            return Ok(());
        }
        self.anchor_head(seq, &hash).await
    }

    async fn anchor_head(&self, seq: u64, hash: &str) -> Result<(), StateError> {
        self.put_anchor(&self.chain, seq, hash, None).await?;
        self.anchored_to(seq);
        Ok(())
    }

    /// This chain's records up to `seq` are anchored. Records appended meanwhile stay
    /// unanchored: only those up to `seq` are covered.
    fn anchored_to(&self, seq: u64) {
        self.anchored.fetch_max(seq, Ordering::Relaxed);
        *self
            .last_anchor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    /// What a running worker's timer calls every T seconds: anchors the head when a record is
    /// unanchored, and, after [`IDLE_ANCHOR`] without an anchor, anchors it anyway (sequence 0
    /// for a writer that has written nothing) so that the newest anchor stays fresh. True when
    /// it anchored.
    pub async fn anchor_if_due(&self) -> Result<bool, StateError> {
        let idle = self
            .last_anchor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
            >= IDLE_ANCHOR;
        if self.unanchored() == 0 && !idle {
            return Ok(false);
        }
        let (seq, hash) = self.head.lock().await.clone();
        self.anchor_head(seq, &hash).await?;
        Ok(true)
    }

    /// Anchors the head of another writer's `chain`, one that stopped without anchoring it (its
    /// liveness ran out): the anchor names this writer as its actor and says why. Records cut
    /// from that chain before now are not detected; records cut after now are. The head
    /// anchored, if the chain has any record.
    pub async fn adopt(&self, chain: &str) -> Result<Option<u64>, StateError> {
        let Some((seq, hash)) = self.head_of(chain).await? else {
            return Ok(None);
        };
        let why = format!(
            "adopted by {}: writer {chain} stopped without anchoring its head",
            self.chain
        );
        self.put_anchor(chain, seq, &hash, Some(why)).await?;
        Ok(Some(seq))
    }

    /// The newest record of `chain` (sequence and hash), read consistently.
    async fn head_of(&self, chain: &str) -> Result<Option<(u64, String)>, StateError> {
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("#c = :c")
            .expression_attribute_names("#c", "chain")
            .expression_attribute_values(":c", AttributeValue::S(chain.into()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:Query", e))?;
        Ok(out.items().first().map(|i| {
            let seq = i
                .get("seq")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let hash = i
                .get("hash")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            (seq, hash)
        }))
    }

    /// Appends an anchor naming `chain`'s record `seq` with `hash` to the shared anchor chain.
    async fn put_anchor(
        &self,
        chain: &str,
        seq: u64,
        hash: &str,
        reason: Option<String>,
    ) -> Result<(), StateError> {
        let mut known = self.anchors_head.lock().await;
        for _ in 0..20 {
            let (prev_seq, prev_hash) = match known.take() {
                Some(head) => head,
                None => self
                    .head_of(ANCHORS)
                    .await?
                    .unwrap_or((0, GENESIS.to_string())),
            };
            let record = self.anchor_record(prev_seq, prev_hash, chain, seq, hash, reason.clone());
            match self.put(&record).await {
                Ok(()) => {
                    *known = Some((record.seq, record.hash));
                    return Ok(());
                }
                // Another writer appended first: read the head again.
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StateError::Conflict("the audit anchor chain".into()))
    }

    /// The anchor that follows the anchor chain's record `prev_seq` (hash `prev_hash`) and names
    /// `chain`'s record `seq` with `hash`.
    fn anchor_record(
        &self,
        prev_seq: u64,
        prev_hash: String,
        chain: &str,
        seq: u64,
        hash: &str,
        reason: Option<String>,
    ) -> Record {
        let mut record = Record {
            kind: RecordKind::Anchor,
            chain: ANCHORS.into(),
            seq: prev_seq + 1,
            prev_hash,
            id: super::record_id(ANCHORS, prev_seq + 1),
            time: now_text(),
            after: Some(serde_json::json!({"chain": chain, "seq": seq, "hash": hash})),
            outcome: RecordOutcome::Anchored,
            actor: Some(self.chain.clone()),
            reason,
            ..Record::default()
        };
        record.hash = record.compute_hash();
        record
    }

    /// The anchor of `record`, to write in the same transaction, when writing it leaves this
    /// many records unanchored and this writer is not anchoring already. The anchor chain's
    /// head is held with it. None when the anchor chain's head cannot be read: the anchor is
    /// then made after the record, alone.
    async fn anchor_with(&self, record: &Record) -> Option<HeldAnchor<'_>> {
        if record
            .seq
            .saturating_sub(self.anchored.load(Ordering::Relaxed))
            < self.anchor_every
        {
            return None;
        }
        let mut known = self.anchors_head.try_lock().ok()?;
        if known.is_none() {
            *known = Some(
                self.head_of(ANCHORS)
                    .await
                    .ok()?
                    .unwrap_or((0, GENESIS.to_string())),
            );
        }
        let (prev_seq, prev_hash) = known.clone()?;
        let anchor = self.anchor_record(
            prev_seq,
            prev_hash,
            &self.chain,
            record.seq,
            &record.hash,
            None,
        );
        Some((known, anchor))
    }

    async fn put(&self, record: &Record) -> Result<(), crate::cloud::CloudError> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(record, record.canonical())))
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", "seq")
            .send()
            .await
            .map_err(|e| classify("dynamodb:PutItem", e))?;
        Ok(())
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// The id the next record of this chain gets, unless another is made first or a write
    /// whose answer was lost makes the head be read again.
    pub async fn next_id(&self) -> String {
        super::record_id(&self.chain, self.head.lock().await.0 + 1)
    }

    /// Reads the record `seq` of chain `chain` of this writer's table.
    pub async fn read_record(
        &self,
        chain: &str,
        seq: u64,
    ) -> Result<Option<super::Stored>, StateError> {
        super::read_record(&self.ddb, &self.table, chain, seq).await
    }

    /// Reads the records of job `job` in chain `chain` of this writer's table.
    pub async fn read_job_in_chain(
        &self,
        chain: &str,
        job: &str,
    ) -> Result<Vec<super::Stored>, StateError> {
        super::read_job_in_chain(&self.ddb, &self.table, chain, job).await
    }

    /// Appends a record (its id, chain, sequence, time and hashes are filled in here).
    pub async fn append(&self, record: Record) -> Result<Record, StateError> {
        self.prepare(record).await.write_alone().await
    }

    /// Makes `change` and appends `record` (its id, chain, sequence, time and hashes filled in
    /// here) in one transaction: both are written or neither is, so no change is left off the
    /// record. Returns the record as stored, or `None` when the change's own condition does
    /// not hold (nothing is written). A record whose place in the chain was taken (this
    /// writer's head was behind) is made again after the head is read.
    pub async fn append_with(
        &self,
        store: &Store,
        change: aws_sdk_dynamodb::types::TransactWriteItem,
        record: Record,
    ) -> Result<Option<Record>, StateError> {
        const TRIES: usize = 3;
        for _ in 0..TRIES {
            let mut pending = self.prepare(record.clone()).await;
            // An anchor due is made after the record, on its own, as for a record written alone.
            pending.anchor = None;
            match store.write_recorded(pending.put()?, change.clone()).await? {
                Recorded::Written => return Ok(Some(pending.written(false).await)),
                Recorded::Refused => {
                    // Nothing was written: the chain's head stays where it is.
                    pending.settled = true;
                    return Ok(None);
                }
                Recorded::AuditTaken => {
                    if pending.landed().await? {
                        return Ok(Some(pending.written(false).await));
                    }
                    // Dropped unsettled: the head is read again for the next try.
                }
            }
        }
        Err(StateError::Conflict(format!(
            "audit chain {}: a record's place was taken {TRIES} times",
            self.chain
        )))
    }

    /// What writes a settings item's change with the record `record` makes of it (from what
    /// the item was, to what it becomes), in one transaction: for [`Store::update_setting`]
    /// and [`Store::update_global`].
    pub fn settings_recorder<'a, T>(
        &'a self,
        store: &'a Store,
        record: impl Fn(Option<&T>, &T) -> Record + Sync + 'a,
    ) -> impl Fn(Option<&T>, &T, aws_sdk_dynamodb::types::TransactWriteItem) -> RecordedWrite<'a>
    + Sync
    + 'a {
        move |old, new, change| self.recorded_write(store, change, record(old, new))
    }

    /// What writes a job's move to another status with its record (`by` decided it), in one
    /// transaction: for [`Store::transition_recorded`].
    pub fn job_recorder<'a>(
        &'a self,
        store: &'a Store,
        by: &'a str,
    ) -> impl Fn(&Job, aws_sdk_dynamodb::types::TransactWriteItem) -> RecordedWrite<'a> + Sync + 'a
    {
        move |job, change| self.recorded_write(store, change, Record::for_job(job, by))
    }

    /// [`Self::append_with`] as the store's recorders call it: whether the change was written.
    fn recorded_write<'a>(
        &'a self,
        store: &'a Store,
        change: aws_sdk_dynamodb::types::TransactWriteItem,
        record: Record,
    ) -> RecordedWrite<'a> {
        Box::pin(async move { Ok(self.append_with(store, change, record).await?.is_some()) })
    }

    /// Makes `record` the next of this chain (its id, chain, sequence, time and hashes filled
    /// in), for a caller that writes it together with other items in one transaction, and,
    /// when one is due, its anchor to write with it. The chain's head is held until the record
    /// is written or the [`Pending`] dropped.
    pub async fn prepare(&self, mut record: Record) -> Pending<'_> {
        let mut head = self.head.lock().await;
        if self.uncertain.swap(false, Ordering::Relaxed) {
            match self.head_of(&self.chain).await {
                Ok(Some(stored)) => {
                    self.written.fetch_max(stored.0, Ordering::Relaxed);
                    *head = stored;
                }
                Ok(None) => {}
                // Still not known: the record below may find its place taken, and is then
                // made again after another read.
                Err(_) => self.uncertain.store(true, Ordering::Relaxed),
            }
        }
        record.chain = self.chain.clone();
        record.seq = head.0 + 1;
        record.prev_hash = head.1.clone();
        record.id = super::record_id(&self.chain, record.seq);
        record.time = now_text();
        if let Some(identity) = &self.identity {
            record.identity = Some(identity.clone());
            record.format = super::Format::IDENTIFIED;
        }
        redact_record(&mut record);
        let text = record.seal();
        let anchor = self.anchor_with(&record).await;
        Pending {
            writer: self,
            head,
            record,
            text,
            anchor,
            settled: false,
        }
    }

    /// Counts a record written, and anchors the head when enough are unanchored, unless this
    /// writer is anchoring already: then the anchor being written, the next record or the
    /// timer covers this one, and jobs that end together do not queue one anchor each.
    async fn counted(&self, seq: u64) {
        self.written.fetch_max(seq, Ordering::Relaxed);
        if self.unanchored() >= self.anchor_every
            && !self.anchoring()
            && let Err(e) = self.anchor().await
        {
            tracing::warn!(error = %e, "the audit chain head could not be anchored; it will be at the next try");
        }
    }

    /// How many records written are not covered by an anchor yet.
    fn unanchored(&self) -> u64 {
        self.written
            .load(Ordering::Relaxed)
            .saturating_sub(self.anchored.load(Ordering::Relaxed))
    }

    /// Whether this writer is writing an anchor now.
    fn anchoring(&self) -> bool {
        self.anchors_head.try_lock().is_err()
    }

    async fn stored_hash(&self, seq: u64) -> Result<Option<String>, StateError> {
        Ok(self
            .read_record(&self.chain, seq)
            .await?
            .map(|s| s.stored_hash))
    }
}

/// The item a record is stored as, `canonical` its canonical form ([`Record::canonical`]).
fn item(record: &Record, canonical: String) -> HashMap<String, AttributeValue> {
    let text = |v: &Option<String>| AttributeValue::S(v.clone().unwrap_or_default());
    HashMap::from([
        ("chain".to_string(), AttributeValue::S(record.chain.clone())),
        ("seq".to_string(), AttributeValue::N(record.seq.to_string())),
        ("id".to_string(), AttributeValue::S(record.id.clone())),
        ("time".to_string(), AttributeValue::S(record.time.clone())),
        ("job_id".to_string(), text(&record.job_id)),
        ("resource_id".to_string(), text(&record.resource_id)),
        ("remediation".to_string(), text(&record.remediation)),
        (
            "outcome".to_string(),
            AttributeValue::S(record.outcome.to_string()),
        ),
        ("hash".to_string(), AttributeValue::S(record.hash.clone())),
        ("record".to_string(), AttributeValue::S(canonical)),
    ])
}

/// An anchor prepared with a record, and the anchor chain's head, held until it is written.
type HeldAnchor<'a> = (tokio::sync::MutexGuard<'a, Option<(u64, String)>>, Record);

/// The write that appends `record` to `table`, for a transaction: it fails if the record's
/// place in its chain is taken.
fn record_put(
    table: &str,
    record: &Record,
    canonical: String,
) -> Result<aws_sdk_dynamodb::types::Put, StateError> {
    aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item(record, canonical)))
        .condition_expression("attribute_not_exists(#s)")
        .expression_attribute_names("#s", "seq")
        .build()
        .map_err(|e| StateError::Corrupt(format!("an audit record cannot be built: {e}")))
}

/// The next record of a chain, prepared and not yet written; the chain's head is held. Dropped
/// without [`Pending::written`], it leaves the head to be read again for the next record.
pub struct Pending<'a> {
    writer: &'a AuditWriter,
    head: tokio::sync::MutexGuard<'a, (u64, String)>,
    record: Record,
    /// The record's canonical form, as stored.
    text: String,
    anchor: Option<HeldAnchor<'a>>,
    settled: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.writer.uncertain.store(true, Ordering::Relaxed);
        }
    }
}

impl Pending<'_> {
    /// The record as it will be stored.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The write that appends the record, for a transaction: it fails if the record's place
    /// in the chain is taken.
    pub fn put(&self) -> Result<aws_sdk_dynamodb::types::Put, StateError> {
        record_put(&self.writer.table, &self.record, self.text.clone())
    }

    /// The write that appends the record's anchor, when one is due, for the same transaction:
    /// it fails if another writer appended to the anchor chain first.
    pub fn anchor_put(&self) -> Result<Option<aws_sdk_dynamodb::types::Put>, StateError> {
        self.anchor
            .as_ref()
            .map(|(_, a)| record_put(&self.writer.table, a, a.canonical()))
            .transpose()
    }

    /// Whether the chain already holds this very record at its place: an earlier try of the
    /// write that carried it landed before its answer was lost.
    pub async fn landed(&self) -> Result<bool, StateError> {
        Ok(self.writer.stored_hash(self.record.seq).await?.as_deref()
            == Some(self.record.hash.as_str()))
    }

    /// The record's place in its chain holds another record: this writer's head was behind the
    /// table's (a write whose answer was lost had landed). Dropped, this record leaves the
    /// head to be read again, and the record is made again after it.
    pub fn place_taken(&self) -> StateError {
        StateError::Conflict(format!(
            "audit chain {} already has a record {}: its head is read again",
            self.writer.chain, self.record.seq
        ))
    }

    /// The record is written (by the caller's transaction), and its anchor with it when
    /// `anchored`: the chain's head moves on to the record, the anchor chain's to the anchor.
    /// An anchor not written leaves the anchor chain's head unknown (another writer appended
    /// first, or whether it landed is not known): it is read again for the next anchor.
    pub async fn written(mut self, anchored: bool) -> Record {
        *self.head = (self.record.seq, self.record.hash.clone());
        self.settled = true;
        let writer = self.writer;
        let record = std::mem::take(&mut self.record);
        let anchor = self.anchor.take();
        // The chain's head is let go before counting, which may anchor it.
        drop(self);
        if let Some((mut known, a)) = anchor {
            if anchored {
                *known = Some((a.seq, a.hash));
                writer.anchored_to(record.seq);
            } else {
                *known = None;
            }
        }
        writer.counted(record.seq).await;
        record
    }

    /// Writes the record on its own (its anchor, if one was due, after it).
    pub async fn write_alone(mut self) -> Result<Record, StateError> {
        self.anchor = None;
        if let Err(e) = self.writer.put(&self.record).await {
            if e.code() != Some("ConditionalCheckFailedException") {
                return Err(e.into());
            }
            // An earlier attempt of this very write may have landed before its answer was lost.
            if !self.landed().await? {
                return Err(self.place_taken());
            }
        }
        Ok(self.written(false).await)
    }
}
