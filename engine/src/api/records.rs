//! Ingest (`POST /topics/{name}/records`), reads and tails of a topic.
//!
//! Ingest accepts a JSON array, NDJSON, or a MessagePack array. Each item is
//! either an envelope `{key, timestamp, value, headers}` or, when the query
//! names `key_field` and/or `time_field` (or says `bare=true`), the value
//! itself. Values are stored as MessagePack: JSON is transcoded without
//! building a tree, MessagePack values are copied as they are.

use std::convert::Infallible;
use std::ops::Range;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::auth::{Access, check};
use super::body::{Format, answer, content_format, read as read_body};
use super::error::off_runtime;
use super::{ApiError, AppState};
use crate::job::ingest::NewRecords;
use crate::mpack::{self, FieldPath, Scalar};
use crate::shard::IngestRecord;
use crate::shard::runtime::now_ms;
use crate::state::view::decode_json;

/// Most records one read returns.
pub const MAX_READ_LIMIT: usize = 10_000;
/// Most headers on one record.
pub const MAX_HEADERS: usize = 64;
/// Longest a read waits for new records.
pub const MAX_WAIT_MS: u64 = 30_000;

#[derive(Debug, Default, Deserialize)]
pub struct IngestParams {
    /// Items are bare values; take the key from this field.
    pub key_field: Option<String>,
    /// Items are bare values; take the event time from this field.
    pub time_field: Option<String>,
    /// Items are bare values (no key, time = arrival).
    #[serde(default)]
    pub bare: bool,
    pub producer_id: Option<u64>,
    pub sequence: Option<u64>,
}

/// An envelope item of a JSON body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEnvelope<'a> {
    #[serde(default, borrow)]
    key: Option<&'a RawValue>,
    #[serde(default, borrow, alias = "ts")]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

/// Builds the record arena while checking limits.
struct Builder<'p> {
    out: NewRecords,
    max_records: usize,
    max_value: usize,
    key_field: Option<FieldPath>,
    time_field: Option<FieldPath>,
    params: &'p IngestParams,
    now: i64,
}

fn err_at(i: usize, msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("record {i}: {msg}")).with(serde_json::json!({ "record": i }))
}

impl Builder<'_> {
    fn bare(&self) -> bool {
        self.params.bare || self.key_field.is_some() || self.time_field.is_some()
    }

    fn check_count(&self, n: usize) -> Result<(), ApiError> {
        if n > self.max_records {
            return Err(ApiError::too_large(
                format!(
                    "batch has {n} records, more than the {} allowed (limits.max_batch_records); split it",
                    self.max_records
                ),
                self.max_records,
            ));
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Range<usize> {
        let s = self.out.data.len();
        self.out.data.extend_from_slice(bytes);
        s..self.out.data.len()
    }

    /// Appends a value given as JSON text, transcoded to MessagePack.
    fn put_json_value(&mut self, i: usize, raw: &str) -> Result<Range<usize>, ApiError> {
        let start = self.out.data.len();
        let mut de = serde_json::Deserializer::from_str(raw);
        let mut ser = rmp_serde::Serializer::new(&mut self.out.data).with_struct_map();
        serde_transcode::transcode(&mut de, &mut ser)
            .map_err(|e| err_at(i, format!("value: {e}")))?;
        self.finish_value(i, start)
    }

    fn finish_value(&self, i: usize, start: usize) -> Result<Range<usize>, ApiError> {
        let len = self.out.data.len() - start;
        if len > self.max_value {
            return Err(ApiError::too_large(
                format!(
                    "record {i}: value is {len} bytes as MessagePack, more than the {} allowed (limits.max_record_bytes)",
                    self.max_value
                ),
                self.max_value,
            ));
        }
        Ok(start..self.out.data.len())
    }

    /// Key and time from fields of a stored value (bare items).
    fn key_and_time_of(
        &mut self,
        i: usize,
        value: Range<usize>,
    ) -> Result<(Range<usize>, i64), ApiError> {
        let mut key = Vec::new();
        if let Some(f) = &self.key_field {
            let ok = f
                .get(&self.out.data[value.clone()])
                .is_some_and(|s| s.write_key(&mut key));
            if !ok {
                return Err(err_at(
                    i,
                    format!("key field `{f}` is missing or not a string or integer"),
                ));
            }
        }
        let ts = match &self.time_field {
            None => self.now,
            Some(f) => match f.get(&self.out.data[value.clone()]) {
                Some(Scalar::Str(s)) => {
                    parse_time(s).map_err(|m| err_at(i, format!("time field `{f}`: {m}")))?
                }
                Some(s) => s.as_i64().ok_or_else(|| {
                    err_at(
                        i,
                        format!("time field `{f}` is not epoch milliseconds or RFC 3339"),
                    )
                })?,
                None => return Err(err_at(i, format!("time field `{f}` is missing"))),
            },
        };
        Ok((self.put(&key), ts))
    }

    fn push(
        &mut self,
        ts: i64,
        key: Range<usize>,
        value: Range<usize>,
        headers: Vec<(Range<usize>, Range<usize>)>,
    ) {
        debug_assert!(
            headers.len() <= MAX_HEADERS,
            "callers check the header bound"
        );
        self.out.records.push(IngestRecord {
            timestamp: ts,
            key,
            value,
            headers,
        });
    }

    fn json_item(&mut self, i: usize, raw: &str) -> Result<(), ApiError> {
        if self.bare() {
            let v = self.put_json_value(i, raw)?;
            let (k, ts) = self.key_and_time_of(i, v.clone())?;
            self.push(ts, k, v, Vec::new());
            return Ok(());
        }
        let env: JsonEnvelope<'_> = serde_json::from_str(raw).map_err(|e| {
            err_at(i, format!("{e}; send {{\"key\", \"timestamp\", \"value\"}} objects, or bare values with ?bare=true"))
        })?;
        if env.headers.as_ref().is_some_and(|h| h.len() > MAX_HEADERS) {
            return Err(err_at(i, format!("more than {MAX_HEADERS} headers")));
        }
        let key = match env.key {
            None => Vec::new(),
            Some(k) => match serde_json::from_str::<serde_json::Value>(k.get()) {
                Ok(serde_json::Value::String(s)) => s.into_bytes(),
                Ok(serde_json::Value::Number(n)) => n.to_string().into_bytes(),
                Ok(serde_json::Value::Null) => Vec::new(),
                _ => return Err(err_at(i, "key must be a string or a number")),
            },
        };
        let ts = match env.timestamp {
            None => self.now,
            Some(t) => match serde_json::from_str::<serde_json::Value>(t.get()) {
                Ok(serde_json::Value::Number(n)) => n
                    .as_i64()
                    .ok_or_else(|| err_at(i, "timestamp must be integer epoch milliseconds"))?,
                Ok(serde_json::Value::String(s)) => {
                    parse_time(&s).map_err(|m| err_at(i, format!("timestamp: {m}")))?
                }
                _ => {
                    return Err(err_at(
                        i,
                        "timestamp must be epoch milliseconds or an RFC 3339 string",
                    ));
                }
            },
        };
        let v = self.put_json_value(i, env.value.get())?;
        let k = self.put(&key);
        let mut headers = Vec::new();
        for (name, value) in env.headers.unwrap_or_default() {
            headers.push((self.put(name.as_bytes()), self.put(value.as_bytes())));
        }
        self.push(ts, k, v, headers);
        Ok(())
    }

    fn msgpack_item(&mut self, i: usize, item: &[u8]) -> Result<(), ApiError> {
        if self.bare() {
            let start = self.out.data.len();
            self.out.data.extend_from_slice(item);
            let v = self.finish_value(i, start)?;
            let (k, ts) = self.key_and_time_of(i, v.clone())?;
            self.push(ts, k, v, Vec::new());
            return Ok(());
        }
        let fields =
            mpack::map_fields(item).ok_or_else(|| err_at(i, "not a map with string keys"))?;
        let (mut key, mut ts, mut value, mut header_map) = (Vec::new(), self.now, None, None);
        for (name, range) in fields {
            let raw = &item[range];
            match name {
                "key" => match mpack::scalar(raw) {
                    Some(Scalar::Nil) => {}
                    Some(s) if s.write_key(&mut key) => {}
                    _ => return Err(err_at(i, "key must be a string or an integer")),
                },
                "timestamp" | "ts" => {
                    ts = match mpack::scalar(raw) {
                        Some(Scalar::Str(s)) => {
                            parse_time(s).map_err(|m| err_at(i, format!("timestamp: {m}")))?
                        }
                        Some(s) => s
                            .as_i64()
                            .ok_or_else(|| err_at(i, "timestamp must be epoch milliseconds"))?,
                        None => return Err(err_at(i, "timestamp is malformed")),
                    }
                }
                "value" => value = Some(raw),
                "headers" => header_map = Some(raw),
                other => {
                    return Err(err_at(
                        i,
                        format!("unknown field `{other}`; expected key, timestamp, value, headers"),
                    ));
                }
            }
        }
        let raw = value.ok_or_else(|| err_at(i, "missing `value`"))?;
        let start = self.out.data.len();
        self.out.data.extend_from_slice(raw);
        let v = self.finish_value(i, start)?;
        let k = self.put(&key);
        let mut headers = Vec::new();
        if let Some(h) = header_map {
            let fields = mpack::map_fields(h)
                .ok_or_else(|| err_at(i, "headers must be a map of strings"))?;
            if fields.len() > MAX_HEADERS {
                return Err(err_at(i, format!("more than {MAX_HEADERS} headers")));
            }
            for (name, r) in fields {
                let Some(Scalar::Str(value)) = mpack::scalar(&h[r]) else {
                    return Err(err_at(i, format!("header `{name}` must be a string")));
                };
                headers.push((self.put(name.as_bytes()), self.put(value.as_bytes())));
            }
        }
        self.push(ts, k, v, headers);
        Ok(())
    }
}

/// Epoch milliseconds from RFC 3339 (`2024-05-01T10:00:00Z`).
fn parse_time(s: &str) -> Result<i64, String> {
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| format!("`{s}` is not RFC 3339 ({e})"))?;
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    Ok(ms)
}

/// Parses an ingest body into records, checking every limit.
pub fn parse_body(
    format: Format,
    body: &[u8],
    params: &IngestParams,
    max_records: usize,
    max_value: usize,
) -> Result<NewRecords, ApiError> {
    let mut b = Builder {
        out: NewRecords::default(),
        max_records,
        max_value,
        key_field: params.key_field.as_deref().map(FieldPath::parse),
        time_field: params.time_field.as_deref().map(FieldPath::parse),
        params,
        now: now_ms(),
    };
    b.out.data.reserve(body.len());
    match format {
        Format::Json => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("body must be a JSON array of records: {e}"))
            })?;
            b.check_count(items.len())?;
            for (i, raw) in items.iter().enumerate() {
                b.json_item(i, raw.get())?;
            }
        }
        Format::Ndjson => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            b.check_count(lines.len())?;
            for (i, line) in lines.iter().enumerate() {
                b.json_item(i, line)?;
            }
        }
        Format::MsgPack => {
            let items = mpack::array_items(body).ok_or_else(|| {
                ApiError::bad_request("body must be one well-formed MessagePack array of records")
            })?;
            b.check_count(items.len())?;
            for (i, r) in items.into_iter().enumerate() {
                b.msgpack_item(i, &body[r])?;
            }
        }
    }
    if b.out.records.is_empty() {
        return Err(ApiError::bad_request("the batch holds no records"));
    }
    Ok(b.out)
}

pub async fn ingest(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(params): Query<IngestParams>,
    body: Body,
) -> Result<Response, ApiError> {
    let cfg = st.engine.config();
    check(&cfg.auth, &headers, Access::Ingest)?;
    if st.engine.log.topic(&name).is_none() {
        return Err(ApiError::not_found(format!(
            "topic `{name}` does not exist; create it with POST /api/v1/topics"
        )));
    }
    let producer = match (params.producer_id, params.sequence) {
        (Some(p), Some(s)) => Some((p, s)),
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_request(
                "give both producer_id and sequence for an idempotent batch, or neither",
            ));
        }
    };
    let bytes = read_body(body, cfg.limits.max_body_bytes).await?;
    let format = content_format(&headers);
    let (max_records, max_value) = (cfg.limits.max_batch_records, cfg.limits.max_record_bytes);
    // A body of 1,000 records takes a fraction of a millisecond to parse:
    // done on a runtime worker, a burst of them would queue every other
    // request (a dashboard's view query) behind it.
    let records =
        off_runtime(move || parse_body(format, &bytes, &params, max_records, max_value)).await?;
    let result = st.engine.ingest(&name, records, producer).await?;
    Ok(answer(&headers, StatusCode::OK, &result))
}

#[derive(Debug, Deserialize)]
pub struct ReadParams {
    pub partition: Option<u32>,
    pub offset: Option<u64>,
    pub limit: Option<usize>,
    /// Wait up to this long for records when there are none yet.
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ReadRecord {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
    pub key: String,
    pub value: serde_json::Value,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct ReadAnswer {
    pub topic: String,
    pub partition: u32,
    pub records: Vec<ReadRecord>,
    pub next_offset: u64,
    pub end_offset: u64,
}

fn read_some(
    st: &AppState,
    name: &str,
    partition: u32,
    offset: u64,
    limit: usize,
) -> Result<ReadAnswer, ApiError> {
    let topic = st
        .engine
        .log
        .topic(name)
        .ok_or_else(|| ApiError::not_found(format!("topic `{name}` does not exist")))?;
    let n = topic.partitions().len() as u32;
    if partition >= n {
        return Err(ApiError::bad_request(format!(
            "topic `{name}` has partitions 0 to {}",
            n - 1
        )));
    }
    let part = topic.partition(partition).clone();
    let mut records = Vec::new();
    let outcome = part.reader().read(offset, limit, 16 << 20, |rv| {
        records.push(ReadRecord {
            partition,
            offset: rv.offset,
            timestamp: rv.timestamp,
            key: String::from_utf8_lossy(rv.key).into_owned(),
            value: decode_json(rv.value),
            headers: rv
                .headers()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
        });
    })?;
    Ok(ReadAnswer {
        topic: name.to_owned(),
        partition,
        records,
        next_offset: outcome.next_offset,
        end_offset: part.end_offset(),
    })
}

pub async fn read_records(
    st: &AppState,
    name: &str,
    p: &ReadParams,
) -> Result<ReadAnswer, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_READ_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_READ_LIMIT}"
        )));
    }
    let partition = p.partition.unwrap_or(0);
    let offset = p.offset.unwrap_or(0);
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(p.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    loop {
        let a = read_some(st, name, partition, offset, limit)?;
        if !a.records.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn read(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(p): Query<ReadParams>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let a = read_records(&st, &name, &p).await?;
    Ok(answer(&headers, StatusCode::OK, &a))
}

#[derive(Debug, Deserialize)]
pub struct TailParams {
    pub partition: Option<u32>,
    /// `latest` (default) or `earliest`.
    pub from: Option<String>,
}

/// Server-sent events: one `record` event per new record of the topic.
pub async fn tail(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(p): Query<TailParams>,
) -> Result<Response, ApiError> {
    check(&st.engine.config().auth, &headers, Access::Read)?;
    let topic = st
        .engine
        .log
        .topic(&name)
        .ok_or_else(|| ApiError::not_found(format!("topic `{name}` does not exist")))?;
    let n = topic.partitions().len() as u32;
    let parts: Vec<u32> = match p.partition {
        Some(x) if x >= n => {
            return Err(ApiError::bad_request(format!(
                "topic `{name}` has partitions 0 to {}",
                n - 1
            )));
        }
        Some(x) => vec![x],
        None => (0..n).collect(),
    };
    let earliest = p.from.as_deref() == Some("earliest");
    let positions: Vec<(u32, u64)> = parts
        .iter()
        .map(|&q| {
            let part = topic.partition(q);
            (
                q,
                if earliest {
                    part.start_offset()
                } else {
                    part.end_offset()
                },
            )
        })
        .collect();
    let state = (st, name, positions);
    let stream = futures_util::stream::unfold(state, |(st, name, mut positions)| async move {
        loop {
            let mut events = Vec::new();
            for (q, off) in positions.iter_mut() {
                match read_some(&st, &name, *q, *off, 500) {
                    Ok(a) => {
                        *off = a.next_offset;
                        for r in a.records {
                            let data = serde_json::to_string(&r).unwrap_or_default();
                            events.push(Ok::<Event, Infallible>(
                                Event::default().event("record").data(data),
                            ));
                        }
                    }
                    Err(e) => {
                        events.push(Ok(Event::default().event("error").data(e.message)));
                        return Some((futures_util::stream::iter(events), (st, name, Vec::new())));
                    }
                }
            }
            if positions.is_empty() {
                return None;
            }
            if !events.is_empty() {
                return Some((futures_util::stream::iter(events), (st, name, positions)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    use futures_util::StreamExt;
    Ok(Sse::new(stream.flatten())
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> IngestParams {
        IngestParams::default()
    }

    #[test]
    fn json_envelopes_become_msgpack_records() {
        let body = br#"[{"key":"p1","timestamp":1000,"value":{"amount":5}},
                        {"key":7,"timestamp":"1970-01-01T00:00:02Z","value":[1,2]}]"#;
        let r = parse_body(Format::Json, body, &params(), 10, 1000).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(&r.data[r.records[0].key.clone()], b"p1");
        assert_eq!(r.records[1].timestamp, 2000);
        assert_eq!(&r.data[r.records[1].key.clone()], b"7");
        let v: serde_json::Value =
            rmp_serde::from_slice(&r.data[r.records[0].value.clone()]).unwrap();
        assert_eq!(v, serde_json::json!({"amount": 5}));
    }

    #[test]
    fn bare_values_take_key_and_time_from_named_fields() {
        let p = IngestParams {
            key_field: Some("payer".into()),
            time_field: Some("ts".into()),
            ..params()
        };
        let body = b"{\"payer\":\"u1\",\"ts\":5}\n{\"payer\":\"u2\",\"ts\":6}\n";
        let r = parse_body(Format::Ndjson, body, &p, 10, 1000).unwrap();
        assert_eq!(&r.data[r.records[1].key.clone()], b"u2");
        assert_eq!(r.records[1].timestamp, 6);
        let missing = parse_body(Format::Ndjson, b"{\"ts\":5}", &p, 10, 1000).unwrap_err();
        assert!(
            missing.message.contains("record 0") && missing.message.contains("payer"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn msgpack_values_are_copied_unchanged() {
        let value = serde_json::json!({"bid": {"price": 10}});
        let item = serde_json::json!([{"key": "k", "timestamp": 9, "value": value}]);
        let body = rmp_serde::to_vec_named(&item).unwrap();
        let r = parse_body(Format::MsgPack, &body, &params(), 10, 1000).unwrap();
        assert_eq!(
            &r.data[r.records[0].value.clone()],
            &rmp_serde::to_vec_named(&value).unwrap()[..]
        );
        assert_eq!(r.records[0].timestamp, 9);
    }

    #[test]
    fn limits_and_malformed_bodies_are_refused_clearly() {
        let e = parse_body(
            Format::Json,
            br#"[{"value":1},{"value":2}]"#,
            &params(),
            1,
            1000,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.message.contains("max_batch_records"));
        let e = parse_body(
            Format::Json,
            br#"[{"value":"xxxxxxxxxxxx"}]"#,
            &params(),
            10,
            4,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = parse_body(Format::Json, br#"[{"value":1"#, &params(), 10, 100).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse_body(Format::Json, br#"[{"valu":1}]"#, &params(), 10, 100).unwrap_err();
        assert!(e.message.contains("record 0"));
        let e = parse_body(Format::MsgPack, &[0x92, 0x01], &params(), 10, 100).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse_body(Format::Json, b"[]", &params(), 10, 100).unwrap_err();
        assert!(e.message.contains("no records"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            for f in [Format::Json, Format::Ndjson, Format::MsgPack] {
                let _ = parse_body(f, &body, &params(), 100, 1000);
            }
        }
    }
}
