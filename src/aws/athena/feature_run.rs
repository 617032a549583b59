//! One feature run: a count of the training split's pairs and entities, then the train and
//! validation UNLOADs, run in the stack's workgroup. A run is addressed by the digest of its
//! inputs, so it happens once per features spec; its record (`features/runs/<digest>.json` in
//! the artifact bucket) holds the prefixes and counts that training reads through the run's
//! outputs. The queries run while the resource is "pending", so they hold no worker slot, and an
//! interrupted run stops them.
//!
//! A retrain asks for a fresh window, ending at a given time: a run whose window ends elsewhere
//! is replaced, and one that already ends there is kept, so that retrying the same window trains
//! nothing new.
//!
//! A young lake may not hold enough data yet. When the count is below `features.minRows` pairs
//! or `features.minEntities` entities, nothing is unloaded: the record says "waiting", the node
//! reports it, everything downstream waits, and the next apply counts again.

use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};

use crate::aws::error::service_error;
use crate::aws::s3::delete_prefix;
use crate::aws::s3::{delete_json, read_json, write_json};
use crate::engine::{Change, Key, Outputs, Ownership, Readiness};
use crate::pipeline::features::{
    FeatureSql, RunRecord, Split, Table, inputs_hash, prefix, record_key, run_id, run_prefix, tables,
};
use crate::resource::{Identity, Resource, ResourceError};
use crate::stack::Stack;

pub const ADDRESS: &str = "features.run/current";

/// The train split's prefix, for the training job's `train` channel.
pub const TRAIN_PREFIX: Key<String> = Key::new("trainPrefix");
/// The validation split's prefix, for the `validation` channel.
pub const VALIDATION_PREFIX: Key<String> = Key::new("validationPrefix");
/// Distinct entities in the train split, which size the model.
pub const DISTINCT_ENTITIES: Key<u64> = Key::new("distinctEntities");
/// The run's Athena queries (count, then the two UNLOADs), for the run ledger.
pub const QUERY_IDS: Key<Vec<String>> = Key::new("queryIds");
/// What they scanned.
pub const BYTES_SCANNED: Key<u64> = Key::new("bytesScanned");

/// Queries started by `create` and not yet finished.
#[derive(Debug, Clone)]
enum InFlight {
    Counting { record: RunRecord, count: String, sql: FeatureSql },
    Unloading { record: RunRecord, unloads: [String; 2] },
}

pub struct FeatureRun {
    identity: Identity,
    athena: aws_sdk_athena::Client,
    s3: aws_sdk_s3::Client,
    bucket: String,
    workgroup: String,
    database: String,
    inputs: String,
    tables: Vec<Table>,
    features: crate::manifest::Features,
    /// The end of the window a retrain asks for; `None` keeps whichever window the run has.
    window_end: Option<SystemTime>,
    in_flight: Mutex<Option<InFlight>>,
}

impl FeatureRun {
    pub fn new(
        stack: &Stack,
        features: &crate::manifest::Features,
        athena: aws_sdk_athena::Client,
        s3: aws_sdk_s3::Client,
    ) -> Self {
        let tables = tables(stack, features);
        let inputs = inputs_hash(&tables, features);
        let identity = Identity::new(stack, ADDRESS, format!("features-{inputs}"));
        FeatureRun {
            identity,
            athena,
            s3,
            bucket: stack.artifact_bucket(),
            workgroup: stack.resource_name("features"),
            database: crate::aws::securitylake::glue_database(&crate::pipeline::features::query_region(stack)),
            inputs,
            tables,
            features: features.clone(),
            window_end: None,
            in_flight: Mutex::new(None),
        }
    }

    /// A run over the window that ends at `end`.
    pub fn ending_at(self, end: SystemTime) -> Self {
        FeatureRun { window_end: Some(end), ..self }
    }

    async fn start(&self, sql: String) -> Result<String, ResourceError> {
        let out = self
            .athena
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.workgroup)
            .query_execution_context(QueryExecutionContext::builder().database(&self.database).build())
            .send()
            .await
            .map_err(|e| service_error("StartQueryExecution", e))?;
        out.query_execution_id()
            .map(str::to_owned)
            .ok_or_else(|| ResourceError::Invalid("Athena returned no query id".into()))
    }

    /// The queries of the stack's workgroup whose text names one of `prefixes`: an interrupted
    /// run's UNLOADs, when it was killed before it could record their ids. Athena lists a
    /// workgroup's executions without their text, so they are described fifty at a time.
    async fn queries_naming(&self, prefixes: &[&str]) -> Result<Vec<String>, ResourceError> {
        let mut ids = Vec::new();
        let mut pages = self.athena.list_query_executions().work_group(&self.workgroup).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| service_error("ListQueryExecutions", e))?;
            ids.extend(page.query_execution_ids().iter().cloned());
        }
        let mut found = Vec::new();
        for chunk in ids.chunks(50) {
            let out = self
                .athena
                .batch_get_query_execution()
                .set_query_execution_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| service_error("BatchGetQueryExecution", e))?;
            let naming = out
                .query_executions()
                .iter()
                .filter(|q| q.query().is_some_and(|sql| prefixes.iter().any(|p| sql.contains(p))));
            found.extend(naming.filter_map(|q| q.query_execution_id()).map(str::to_owned));
        }
        Ok(found)
    }

    /// The query's state, Athena's reason when it failed or was cancelled, and what it scanned.
    async fn state(&self, id: &str) -> Result<(QueryExecutionState, Option<String>, u64), ResourceError> {
        let out = self
            .athena
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .map_err(|e| service_error("GetQueryExecution", e))?;
        let status = out.query_execution().and_then(|q| q.status());
        let state = status.and_then(|s| s.state()).cloned().unwrap_or(QueryExecutionState::Queued);
        let reason = status.and_then(|s| s.athena_error().and_then(|e| e.error_message()).or(s.state_change_reason()));
        let scanned = out.query_execution().and_then(|q| q.statistics()).and_then(|s| s.data_scanned_in_bytes());
        Ok((state, reason.map(str::to_owned), scanned.and_then(|b| u64::try_from(b).ok()).unwrap_or(0)))
    }

    /// The bytes the queries scanned, once every one has succeeded; `None` while any runs. A
    /// failed or cancelled one fails the run with Athena's reason.
    async fn succeeded(&self, ids: &[&String]) -> Result<Option<u64>, ResourceError> {
        let (mut done, mut scanned) = (0, 0);
        for id in ids {
            match self.state(id).await? {
                (QueryExecutionState::Succeeded, _, bytes) => {
                    done += 1;
                    scanned += bytes;
                }
                (state @ (QueryExecutionState::Failed | QueryExecutionState::Cancelled), reason, _) => {
                    return Err(ResourceError::Service {
                        operation: "Athena query",
                        code: state.as_str().to_owned(),
                        message: format!("{id}: {}", reason.unwrap_or_else(|| "no reason given".into())),
                    });
                }
                _ => {}
            }
        }
        Ok((done == ids.len()).then_some(scanned))
    }

    /// (pairs, distinct entities) from the count query's one row.
    async fn counts(&self, id: &str) -> Result<(u64, u64), ResourceError> {
        let out = self
            .athena
            .get_query_results()
            .query_execution_id(id)
            .send()
            .await
            .map_err(|e| service_error("GetQueryResults", e))?;
        // Row 0 is the header.
        let row = out.result_set().and_then(|r| r.rows().get(1));
        let cell = |i: usize| {
            let value = row.and_then(|r| r.data().get(i)).and_then(|d| d.var_char_value());
            value.and_then(|v| v.parse().ok()).ok_or_else(|| {
                ResourceError::Invalid(format!("the count query returned {value:?} in column {i}, not a number"))
            })
        };
        Ok((cell(0)?, cell(1)?))
    }

    fn enough(&self, rows: u64, entities: u64) -> bool {
        rows >= self.features.min_rows && entities >= self.features.min_entities
    }

    fn waiting_reason(&self, rows: u64, entities: u64) -> String {
        format!(
            "waiting for data: {rows} rows, {entities} entities in the training window (needs {} and {})",
            self.features.min_rows, self.features.min_entities
        )
    }

    fn set_in_flight(&self, flight: Option<InFlight>) {
        if let Ok(mut slot) = self.in_flight.lock() {
            *slot = flight;
        }
    }

    async fn write_record(&self, record: &RunRecord) -> Result<(), ResourceError> {
        write_json(&self.s3, &self.bucket, &record_key(&self.inputs), record).await
    }

    /// Stops a query; one that has already finished stays as it is.
    async fn stop(&self, id: &str) -> Result<(), ResourceError> {
        self.athena
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .map_err(|e| service_error("StopQueryExecution", e))?;
        Ok(())
    }

    fn in_flight(&self) -> Option<InFlight> {
        self.in_flight.lock().ok().and_then(|f| f.clone())
    }
}

#[async_trait]
impl Resource for FeatureRun {
    type Observed = RunRecord;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<RunRecord>, ResourceError> {
        read_json(&self.s3, &self.bucket, &record_key(&self.inputs)).await
    }

    fn owner(&self, _observed: &RunRecord) -> Ownership {
        // It lives in the stack's own bucket.
        Ownership::Untaggable
    }

    /// Inputs are in the address: different inputs are a different run. A run that found too
    /// little data is run again, so that a lake that has filled up since is trained on.
    fn diff(&self, observed: &RunRecord) -> Vec<Change> {
        if let Some(end) = self.window_end.map(run_id)
            && observed.run_id != end
        {
            return vec![Change::replacing("window", format!("ends {}", observed.run_id), format!("ends {end}"))];
        }
        if observed.unloading {
            return vec![Change::replacing(
                "run",
                format!("{} interrupted while unloading", observed.run_id),
                "its partial output removed, and a new run",
            )];
        }
        if observed.waiting || !self.enough(observed.rows, observed.distinct_entities) {
            return vec![Change::replacing(
                "data",
                format!("{} rows, {} entities", observed.rows, observed.distinct_entities),
                format!("at least {} rows and {} entities", self.features.min_rows, self.features.min_entities),
            )];
        }
        Vec::new()
    }

    fn id(&self, observed: &RunRecord) -> String {
        format!("run {} ({} rows, {} entities)", observed.run_id, observed.rows, observed.distinct_entities)
    }

    fn health(&self, observed: &RunRecord) -> Option<String> {
        if observed.unloading {
            return Some(format!("run {} was interrupted while unloading; the next apply runs again", observed.run_id));
        }
        observed.waiting.then(|| self.waiting_reason(observed.rows, observed.distinct_entities))
    }

    /// A run to be replaced publishes nothing: training waits for the new one.
    fn outputs(&self, observed: &RunRecord) -> Outputs {
        if !self.diff(observed).is_empty() {
            return Outputs::new();
        }
        let queries: Vec<String> = observed.count_query.iter().chain(&observed.queries).cloned().collect();
        Outputs::new()
            .with(TRAIN_PREFIX, &observed.train_prefix)
            .with(VALIDATION_PREFIX, &observed.validation_prefix)
            .with(DISTINCT_ENTITIES, &observed.distinct_entities)
            .with(QUERY_IDS, &queries)
            .with(BYTES_SCANNED, &observed.bytes_scanned)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let now = self.window_end.unwrap_or_else(SystemTime::now);
        let run = run_id(now);
        let sql = FeatureSql::new(self.tables.clone(), self.features.clone(), now);
        let count = self.start(sql.counts()).await?;
        let record = RunRecord {
            train_prefix: prefix(&self.bucket, &run, Split::Train),
            validation_prefix: prefix(&self.bucket, &run, Split::Validation),
            run_id: run,
            inputs: self.inputs.clone(),
            distinct_entities: 0,
            rows: 0,
            waiting: false,
            unloading: false,
            queries: Vec::new(),
            count_query: Some(count.clone()),
            bytes_scanned: 0,
        };
        self.set_in_flight(Some(InFlight::Counting { record, count, sql }));
        Ok(())
    }

    async fn update(&self, _observed: &RunRecord, _changes: &[Change]) -> Result<(), ResourceError> {
        Ok(())
    }

    /// A finished run's data goes with the artifact bucket: only its record says the run exists.
    /// An interrupted run's queries are stopped and its partial output removed first; a run
    /// killed between starting its UNLOADs and recording them is found by their target prefixes.
    async fn delete(&self, observed: &RunRecord) -> Result<(), ResourceError> {
        if observed.unloading {
            let queries = match observed.queries.as_slice() {
                [] => self.queries_naming(&[&observed.train_prefix, &observed.validation_prefix]).await?,
                recorded => recorded.to_vec(),
            };
            for id in &queries {
                self.stop(id).await?;
            }
            delete_prefix(&self.s3, &self.bucket, &run_prefix(&observed.run_id)).await?;
        }
        delete_json(&self.s3, &self.bucket, &record_key(&self.inputs)).await
    }

    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        match self.in_flight() {
            None => Ok(Readiness::Ready),
            Some(InFlight::Counting { record, count, sql }) => {
                let Some(scanned) = self.succeeded(&[&count]).await? else {
                    return Ok(self.identity.pending("counting the window's pairs"));
                };
                let (rows, entities) = self.counts(&count).await?;
                let record = RunRecord { rows, distinct_entities: entities, bytes_scanned: scanned, ..record };
                if !self.enough(rows, entities) {
                    self.write_record(&RunRecord { waiting: true, ..record }).await?;
                    self.set_in_flight(None);
                    return Ok(Readiness::Waiting { reason: self.waiting_reason(rows, entities) });
                }
                // The journal first, so that a run killed from here on is known to the next apply.
                let mut record = RunRecord { unloading: true, ..record };
                self.write_record(&record).await?;
                let unloads = [
                    self.start(sql.unload(Split::Train, &record.train_prefix)).await?,
                    self.start(sql.unload(Split::Validation, &record.validation_prefix)).await?,
                ];
                record.queries = unloads.to_vec();
                self.write_record(&record).await?;
                let record = RunRecord { unloading: false, ..record };
                self.set_in_flight(Some(InFlight::Unloading { record, unloads }));
                Ok(self.identity.pending("unloading train and validation pairs"))
            }
            Some(InFlight::Unloading { record, unloads }) => {
                let Some(scanned) = self.succeeded(&[&unloads[0], &unloads[1]]).await? else {
                    return Ok(self.identity.pending("unloading train and validation pairs"));
                };
                let record = RunRecord { bytes_scanned: record.bytes_scanned + scanned, ..record };
                self.write_record(&record).await?;
                self.set_in_flight(None);
                Ok(Readiness::Ready)
            }
        }
    }

    async fn abandon(&self) -> Result<(), ResourceError> {
        let ids = match self.in_flight() {
            None => return Ok(()),
            Some(InFlight::Counting { count, .. }) => vec![count],
            Some(InFlight::Unloading { unloads, .. }) => unloads.to_vec(),
        };
        for id in &ids {
            self.stop(id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_athena::operation::batch_get_query_execution::BatchGetQueryExecutionOutput;
    use aws_sdk_athena::operation::get_query_execution::GetQueryExecutionOutput;
    use aws_sdk_athena::operation::get_query_results::GetQueryResultsOutput;
    use aws_sdk_athena::operation::list_query_executions::ListQueryExecutionsOutput;
    use aws_sdk_athena::operation::start_query_execution::StartQueryExecutionOutput;
    use aws_sdk_athena::operation::stop_query_execution::StopQueryExecutionOutput;
    use aws_sdk_athena::types::{Datum, QueryExecution, QueryExecutionStatus, ResultSet, Row};
    use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
    use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::Object;
    use aws_sdk_s3::types::error::NoSuchKey;
    use aws_smithy_mocks::{Rule, mock};

    use std::sync::Arc;

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::Action;
    use crate::engine::Node;
    use crate::resource::Managed;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    fn node(athena: &[&Rule], s3: &[&Rule]) -> Managed<FeatureRun> {
        let s = stack("  features: {}\n");
        let features = s.manifest.spec.features.as_ref().expect("features");
        Managed::new(FeatureRun::new(
            &s,
            features,
            mocked_client!(aws_sdk_athena, athena),
            mocked_client!(aws_sdk_s3, s3),
        ))
    }

    fn no_record() -> Rule {
        mock!(aws_sdk_s3::Client::get_object).then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()))
    }

    fn started() -> Rule {
        mock!(aws_sdk_athena::Client::start_query_execution).then_compute_output(|input| {
            let id =
                if input.query_string().is_some_and(|q| q.starts_with("SELECT COUNT")) { "count" } else { "unload" };
            StartQueryExecutionOutput::builder().query_execution_id(id).build()
        })
    }

    fn state(state: QueryExecutionState, reason: Option<&'static str>) -> Rule {
        mock!(aws_sdk_athena::Client::get_query_execution).then_output(move || {
            let status = QueryExecutionStatus::builder()
                .state(state.clone())
                .set_state_change_reason(reason.map(str::to_owned))
                .build();
            GetQueryExecutionOutput::builder().query_execution(QueryExecution::builder().status(status).build()).build()
        })
    }

    fn counted(rows: &'static str, entities: &'static str) -> Rule {
        mock!(aws_sdk_athena::Client::get_query_results).then_output(move || {
            let row = |a: &str, b: &str| {
                Row::builder()
                    .data(Datum::builder().var_char_value(a).build())
                    .data(Datum::builder().var_char_value(b).build())
                    .build()
            };
            GetQueryResultsOutput::builder()
                .result_set(ResultSet::builder().rows(row("pairs", "entities")).rows(row(rows, entities)).build())
                .build()
        })
    }

    fn recorded(waiting: bool) -> Rule {
        mock!(aws_sdk_s3::Client::put_object)
            .match_requests(move |r| {
                let body = r.body().bytes().unwrap_or_default();
                let record: Option<RunRecord> = serde_json::from_slice(body).ok();
                r.key().is_some_and(|k| k.starts_with("features/runs/"))
                    && record.is_some_and(|rec| rec.waiting == waiting)
            })
            .then_output(|| PutObjectOutput::builder().build())
    }

    /// Every record written, in order.
    fn journal() -> (Rule, Arc<Mutex<Vec<RunRecord>>>) {
        let written = Arc::new(Mutex::new(Vec::new()));
        let into = written.clone();
        let rule = mock!(aws_sdk_s3::Client::put_object).then_compute_output(move |r| {
            if let Ok(record) = serde_json::from_slice(r.body().bytes().unwrap_or_default()) {
                into.lock().expect("lock").push(record);
            }
            PutObjectOutput::builder().build()
        });
        (rule, written)
    }

    #[tokio::test]
    async fn a_new_run_counts_then_unloads_both_splits_under_a_journal_and_records_the_counts() {
        let start = started();
        let (done, count, get) = (state(QueryExecutionState::Succeeded, None), counted("25000", "1234"), no_record());
        let (put, written) = journal();
        let n = node(&[&start, &done, &count], &[&get, &put]);
        created_as_planned(&n).await;
        assert_eq!(start.num_calls(), 1, "the count comes first");
        assert!(matches!(n.readiness().await, Ok(Readiness::Pending { .. })));
        assert_eq!(start.num_calls(), 3, "count, train and validation");
        assert_eq!(n.readiness().await.expect("ready"), Readiness::Ready);
        let journal: Vec<(bool, usize)> =
            written.lock().expect("lock").iter().map(|r| (r.unloading, r.queries.len())).collect();
        assert_eq!(journal, [(true, 0), (true, 2), (false, 2)], "marked before the UNLOADs start, cleared after");
        assert_eq!(written.lock().expect("lock")[2].rows, 25000);
    }

    #[tokio::test]
    async fn an_interrupted_run_is_replaced_after_its_queries_stop_and_its_partial_output_goes() {
        let s = stack("  features: {}\n");
        let stop = mock!(aws_sdk_athena::Client::stop_query_execution)
            .then_output(|| StopQueryExecutionOutput::builder().build());
        let list = mock!(aws_sdk_s3::Client::list_objects_v2)
            .match_requests(|r| r.prefix() == Some("features/20261201T000000Z/"))
            .then_output(|| {
                ListObjectsV2Output::builder()
                    .contents(Object::builder().key("features/20261201T000000Z/train/part-0").build())
                    .build()
            });
        let deleted = mock!(aws_sdk_s3::Client::delete_objects)
            .match_requests(|r| {
                r.delete()
                    .is_some_and(|d| d.objects().iter().map(|o| o.key()).eq(["features/20261201T000000Z/train/part-0"]))
            })
            .then_output(|| DeleteObjectsOutput::builder().build());
        let record = mock!(aws_sdk_s3::Client::delete_object)
            .match_requests(|r| r.key().is_some_and(|k| k.starts_with("features/runs/")))
            .then_output(|| DeleteObjectOutput::builder().build());
        let run = FeatureRun::new(
            &s,
            s.manifest.spec.features.as_ref().expect("features"),
            mocked_client!(aws_sdk_athena, &[&stop]),
            mocked_client!(aws_sdk_s3, &[&list, &deleted, &record]),
        );
        let interrupted = RunRecord {
            run_id: "20261201T000000Z".into(),
            inputs: "i".into(),
            train_prefix: "t".into(),
            validation_prefix: "v".into(),
            distinct_entities: 30,
            rows: 12000,
            waiting: false,
            unloading: true,
            queries: vec!["train".into(), "validation".into()],
            count_query: None,
            bytes_scanned: 0,
        };
        assert!(run.diff(&interrupted).iter().any(|c| c.requires_replace), "run again");
        assert!(run.outputs(&interrupted).is_empty(), "nothing for training to read");
        run.delete(&interrupted).await.expect("delete");
        assert_eq!((stop.num_calls(), deleted.num_calls(), record.num_calls()), (2, 1, 1));
    }

    #[tokio::test]
    async fn a_run_killed_before_it_recorded_its_unloads_finds_them_by_their_prefixes_and_stops_them() {
        let s = stack("  features: {}\n");
        let listed = mock!(aws_sdk_athena::Client::list_query_executions)
            .match_requests(|r| r.work_group() == Some("lakesight-demo-features"))
            .then_output(|| {
                ListQueryExecutionsOutput::builder()
                    .query_execution_ids("count")
                    .query_execution_ids("train")
                    .query_execution_ids("other")
                    .build()
            });
        let described = mock!(aws_sdk_athena::Client::batch_get_query_execution).then_compute_output(|r| {
            let query = |id: &str, sql: &str| QueryExecution::builder().query_execution_id(id).query(sql).build();
            assert_eq!(r.query_execution_ids(), ["count", "train", "other"]);
            BatchGetQueryExecutionOutput::builder()
                .query_executions(query("count", "SELECT COUNT(*) FROM t"))
                .query_executions(query("train", "UNLOAD (SELECT 1) TO 's3://b/features/20261201T000000Z/train/'"))
                .query_executions(query("other", "UNLOAD (SELECT 1) TO 's3://b/features/20261130T000000Z/train/'"))
                .build()
        });
        let stop = mock!(aws_sdk_athena::Client::stop_query_execution)
            .match_requests(|r| r.query_execution_id() == Some("train"))
            .then_output(|| StopQueryExecutionOutput::builder().build());
        let list = mock!(aws_sdk_s3::Client::list_objects_v2).then_output(|| ListObjectsV2Output::builder().build());
        let record = mock!(aws_sdk_s3::Client::delete_object).then_output(|| DeleteObjectOutput::builder().build());
        let run = FeatureRun::new(
            &s,
            s.manifest.spec.features.as_ref().expect("features"),
            mocked_client!(aws_sdk_athena, &[&listed, &described, &stop]),
            mocked_client!(aws_sdk_s3, &[&list, &record]),
        );
        let interrupted = RunRecord {
            run_id: "20261201T000000Z".into(),
            inputs: "i".into(),
            train_prefix: "s3://b/features/20261201T000000Z/train/".into(),
            validation_prefix: "s3://b/features/20261201T000000Z/validation/".into(),
            distinct_entities: 30,
            rows: 12000,
            waiting: false,
            unloading: true,
            queries: Vec::new(),
            count_query: None,
            bytes_scanned: 0,
        };
        run.delete(&interrupted).await.expect("delete");
        assert_eq!((described.num_calls(), stop.num_calls(), record.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn too_little_data_waits_without_unloading_and_is_counted_again_next_time() {
        let start = started();
        let (done, count, record, get) =
            (state(QueryExecutionState::Succeeded, None), counted("120", "3"), recorded(true), no_record());
        let n = node(&[&start, &done, &count], &[&get, &record]);
        created_as_planned(&n).await;
        let waiting = n.readiness().await.expect("waiting");
        assert_eq!(
            waiting,
            Readiness::Waiting {
                reason: "waiting for data: 120 rows, 3 entities in the training window (needs 10000 and 10)".into()
            }
        );
        assert_eq!((start.num_calls(), record.num_calls()), (1, 1), "nothing unloaded, the wait recorded");

        let s = stack("  features: {}\n");
        let run = FeatureRun::new(
            &s,
            s.manifest.spec.features.as_ref().expect("features"),
            mocked_client!(aws_sdk_athena, &[]),
            mocked_client!(aws_sdk_s3, &[]),
        );
        let waited = RunRecord {
            run_id: "r".into(),
            inputs: "i".into(),
            train_prefix: "t".into(),
            validation_prefix: "v".into(),
            distinct_entities: 3,
            rows: 120,
            waiting: true,
            unloading: false,
            queries: Vec::new(),
            count_query: None,
            bytes_scanned: 0,
        };
        assert!(run.diff(&waited).iter().any(|c| c.requires_replace), "counted again on the next apply");
        assert!(run.outputs(&waited).is_empty(), "nothing for training to read");
        let old_empty = RunRecord { waiting: false, rows: 0, distinct_entities: 0, ..waited };
        assert!(run.diff(&old_empty).iter().any(|c| c.requires_replace), "an empty run is not kept forever");
    }

    #[test]
    fn a_retrain_replaces_a_run_of_another_window_and_keeps_one_of_the_same() {
        let s = stack(
            "  features: {}
",
        );
        let features = s.manifest.spec.features.as_ref().expect("features");
        let run = |end: Option<SystemTime>| {
            let run =
                FeatureRun::new(&s, features, mocked_client!(aws_sdk_athena, &[]), mocked_client!(aws_sdk_s3, &[]));
            match end {
                Some(end) => run.ending_at(end),
                None => run,
            }
        };
        let end = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_687_200);
        let done = RunRecord {
            run_id: run_id(end),
            inputs: "i".into(),
            train_prefix: "t".into(),
            validation_prefix: "v".into(),
            distinct_entities: 30,
            rows: 12_000,
            waiting: false,
            unloading: false,
            queries: vec!["u1".into(), "u2".into()],
            count_query: Some("c".into()),
            bytes_scanned: 4096,
        };
        assert!(run(None).diff(&done).is_empty(), "an apply keeps the run it has");
        assert!(run(Some(end)).diff(&done).is_empty(), "the same window again is not run again");
        assert_eq!(run(Some(end)).outputs(&done).get(QUERY_IDS), Some(vec!["c".into(), "u1".into(), "u2".into()]));
        assert_eq!(run(Some(end)).outputs(&done).get(BYTES_SCANNED), Some(4096));
        let later = end + std::time::Duration::from_secs(86_400);
        let fresh = run(Some(later));
        assert_eq!(
            fresh.diff(&done),
            [Change::replacing("window", "ends 20261126T100000Z", "ends 20261127T100000Z")],
            "a new window is a new run"
        );
        assert!(fresh.outputs(&done).is_empty(), "training waits for the new run");
    }

    #[tokio::test]
    async fn running_queries_are_pending_and_a_failure_carries_athenas_reason() {
        let (start, get) = (started(), no_record());
        let running = state(QueryExecutionState::Running, None);
        let n = node(&[&start, &running], &[&get]);
        n.apply(Action::Create).await.expect("start");
        assert!(
            matches!(n.readiness().await, Ok(Readiness::Pending { status, .. }) if status == "counting the window's pairs")
        );

        let (start, get) = (started(), no_record());
        let failed = state(QueryExecutionState::Failed, Some("TABLE_NOT_FOUND: no such table"));
        let n = node(&[&start, &failed], &[&get]);
        n.apply(Action::Create).await.expect("start");
        let error = n.readiness().await.expect_err("failed");
        assert!(error.to_string().contains("TABLE_NOT_FOUND: no such table"), "{error}");
    }

    #[tokio::test]
    async fn an_interrupted_run_stops_its_queries() {
        let (start, get) = (started(), no_record());
        let stop = mock!(aws_sdk_athena::Client::stop_query_execution)
            .then_output(|| StopQueryExecutionOutput::builder().build());
        let n = node(&[&start, &stop], &[&get]);
        n.apply(Action::Create).await.expect("start");
        n.abandon().await.expect("stop");
        assert_eq!(stop.num_calls(), 1, "the count, the only query started");
    }
}
