//! Client subcommands: each turns into HTTP requests to a running server and
//! prints a table (or the JSON with `--json`).

use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Value, json};

use super::{Conn, IngestArgs, JobCmd, PluginCmd, TailArgs, TopicCmd, ViewCmd};

/// A connection to the server.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    pub json: bool,
}

impl Client {
    pub fn new(c: &Conn) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        Client {
            base: c.server.trim_end_matches('/').to_owned(),
            token: c.token.clone(),
            agent,
            json: c.json,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn finish(
        &self,
        what: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut r = r.map_err(|e| {
            anyhow!("cannot reach the Sluice server at {} ({e}); is `sluice serve` running? set --server or SLUICE_SERVER", self.base)
        })?;
        let status = r.status();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        let v: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(v);
        }
        let msg = v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        let hint = match status.as_u16() {
            401 | 403 => " (pass the right token with --token or SLUICE_TOKEN)",
            _ => "",
        };
        bail!("{what}: {status}: {msg}{hint}")
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        let mut req = self.agent.get(&self.url(path));
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        self.finish(&format!("GET {path}"), req.call())
    }

    pub fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        let url = self.url(path);
        let mut req = match method {
            "POST" => self.agent.post(&url),
            "PUT" => self.agent.put(&url),
            _ => unreachable!("only POST and PUT carry bodies here"),
        };
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let r = req.header("Content-Type", content_type).send(body);
        self.finish(&format!("{method} {path}"), r)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        let mut req = self.agent.delete(&self.url(path));
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        self.finish(&format!("DELETE {path}"), req.call())
    }

    fn print(&self, v: &Value, table: impl FnOnce(&Value) -> Table) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            println!("{}", table(v));
        }
    }
}

fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(headers.iter().map(|h| h.to_string()));
    t
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn split_ref(r: &str) -> Result<(&str, &str)> {
    r.split_once('@')
        .ok_or_else(|| anyhow!("`{r}`: write the plugin as name@version, e.g. fraud-rules@0.1.0"))
}

/// Key/value table of one JSON object.
fn kv(v: &Value, keys: &[&str]) -> Table {
    let mut t = table(&["field", "value"]);
    for k in keys {
        t.add_row(vec![k.to_string(), s(&v[*k])]);
    }
    t
}

pub fn topics(cmd: TopicCmd) -> Result<()> {
    match cmd {
        TopicCmd::List(c) => {
            let c = Client::new(&c.conn);
            let v = c.get("/api/v1/topics")?;
            c.print(&v, |v| {
                let mut t = table(&[
                    "topic",
                    "partitions",
                    "records",
                    "bytes",
                    "fsync",
                    "written by",
                ]);
                for x in v["topics"].as_array().into_iter().flatten() {
                    t.add_row(vec![
                        s(&x["name"]),
                        s(&x["partitions"]),
                        s(&x["records"]),
                        s(&x["size_bytes"]),
                        s(&x["fsync"]),
                        s(&x["written_by"]),
                    ]);
                }
                t
            });
        }
        TopicCmd::Create {
            name,
            partitions,
            fsync,
            retention_ms,
            retention_bytes,
            conn,
        } => {
            let c = Client::new(&conn);
            let mut body = json!({ "name": name });
            if let Some(p) = partitions {
                body["partitions"] = p.into();
            }
            if let Some(f) = fsync {
                body["fsync"] = f.into();
            }
            if let Some(r) = retention_ms {
                body["retention_ms"] = r.into();
            }
            if let Some(r) = retention_bytes {
                body["retention_bytes"] = r.into();
            }
            let v = c.post_json("/api/v1/topics", &body)?;
            c.print(&v, |v| {
                kv(
                    v,
                    &[
                        "name",
                        "partitions",
                        "fsync",
                        "retention_ms",
                        "retention_bytes",
                        "segment_bytes",
                    ],
                )
            });
        }
        TopicCmd::Describe { name, conn } => {
            let c = Client::new(&conn);
            let v = c.get(&format!("/api/v1/topics/{name}"))?;
            c.print(&v, |v| {
                let mut t = table(&["partition", "start", "end", "durable", "bytes"]);
                for p in v["partition_info"].as_array().into_iter().flatten() {
                    t.add_row(vec![
                        s(&p["partition"]),
                        s(&p["start_offset"]),
                        s(&p["end_offset"]),
                        s(&p["durable_offset"]),
                        s(&p["size_bytes"]),
                    ]);
                }
                for r in v["readers"].as_array().into_iter().flatten() {
                    t.add_row(vec![
                        format!("job {}", s(&r["job"])),
                        "lag".into(),
                        s(&r["lag"]),
                        String::new(),
                        String::new(),
                    ]);
                }
                t
            });
        }
        TopicCmd::Delete { name, conn } => {
            Client::new(&conn).delete(&format!("/api/v1/topics/{name}"))?;
            println!("topic `{name}` deleted");
        }
    }
    Ok(())
}

pub fn plugins(cmd: PluginCmd) -> Result<()> {
    match cmd {
        PluginCmd::List(c) => {
            let c = Client::new(&c.conn);
            let v = c.get("/api/v1/plugins")?;
            c.print(&v, |v| {
                let mut t = table(&["plugin", "version", "bytes", "abi", "digest", "bundled"]);
                for p in v["plugins"].as_array().into_iter().flatten() {
                    let digest = s(&p["digest"]);
                    t.add_row(vec![
                        s(&p["name"]),
                        s(&p["version"]),
                        s(&p["size"]),
                        s(&p["abi_version"]),
                        digest.chars().take(12).collect(),
                        s(&p["bundled"]),
                    ]);
                }
                t
            });
        }
        PluginCmd::Upload {
            file,
            name,
            version,
            conn,
        } => {
            let c = Client::new(&conn);
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let v = c.send(
                "POST",
                &format!("/api/v1/plugins?name={name}&version={version}"),
                "application/wasm",
                &bytes,
            )?;
            c.print(&v, |v| {
                kv(v, &["name", "version", "digest", "size", "abi_version"])
            });
        }
        PluginCmd::Describe { plugin, conn } => {
            let (n, ver) = split_ref(&plugin)?;
            let c = Client::new(&conn);
            let v = c.get(&format!("/api/v1/plugins/{n}/{ver}"))?;
            c.print(&v, |v| {
                let mut t = kv(
                    &v["plugin"],
                    &[
                        "name",
                        "version",
                        "digest",
                        "size",
                        "abi_version",
                        "exports",
                    ],
                );
                t.add_row(vec!["used by".into(), s(&v["used_by"])]);
                t
            });
        }
        PluginCmd::Delete { plugin, conn } => {
            let (n, ver) = split_ref(&plugin)?;
            Client::new(&conn).delete(&format!("/api/v1/plugins/{n}/{ver}"))?;
            println!("plugin `{plugin}` deleted");
        }
    }
    Ok(())
}

fn job_table(v: &Value) -> Table {
    kv(
        v,
        &[
            "name",
            "state",
            "reason",
            "uptime_s",
            "records_in",
            "records_out",
            "rate_in",
            "lag",
            "watermark",
            "checkpoints",
            "last_checkpoint_ms",
            "errors",
            "dead_letters",
            "late_events",
        ],
    )
}

pub fn jobs(cmd: JobCmd) -> Result<()> {
    let (c, v) = match cmd {
        JobCmd::List(c) => {
            let c = Client::new(&c.conn);
            let v = c.get("/api/v1/jobs")?;
            c.print(&v, |v| {
                let mut t = table(&[
                    "job",
                    "state",
                    "in/s",
                    "records in",
                    "lag",
                    "checkpoints",
                    "errors",
                ]);
                for j in v["jobs"].as_array().into_iter().flatten() {
                    t.add_row(vec![
                        s(&j["name"]),
                        s(&j["state"]),
                        format!("{:.0}", j["rate_in"].as_f64().unwrap_or(0.0)),
                        s(&j["records_in"]),
                        s(&j["lag"]),
                        s(&j["checkpoints"]),
                        s(&j["errors"]),
                    ]);
                }
                t
            });
            return Ok(());
        }
        JobCmd::Create { spec, conn } => {
            let c = Client::new(&conn);
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("cannot read {}", spec.display()))?;
            let spec_v: Value = if spec.extension().is_some_and(|e| e == "toml") {
                let t: toml::Value = toml::from_str(&text)
                    .with_context(|| format!("{} is not valid TOML", spec.display()))?;
                serde_json::to_value(t)?
            } else {
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not valid JSON", spec.display()))?
            };
            let v = c.post_json("/api/v1/jobs", &spec_v)?;
            (c, v)
        }
        JobCmd::Describe { name, conn } => {
            let c = Client::new(&conn);
            let v = c.get(&format!("/api/v1/jobs/{name}"))?;
            (c, v)
        }
        JobCmd::Stop { name, conn } => {
            let c = Client::new(&conn);
            let v = c.post_json(&format!("/api/v1/jobs/{name}/stop"), &Value::Null)?;
            (c, v)
        }
        JobCmd::Resume { name, conn } => {
            let c = Client::new(&conn);
            let v = c.post_json(&format!("/api/v1/jobs/{name}/resume"), &Value::Null)?;
            (c, v)
        }
        JobCmd::Checkpoint { name, conn } => {
            let c = Client::new(&conn);
            let v = c.post_json(&format!("/api/v1/jobs/{name}/checkpoint"), &Value::Null)?;
            (c, v)
        }
        JobCmd::Upgrade {
            name,
            plugin,
            version,
            conn,
        } => {
            let c = Client::new(&conn);
            let v = c.post_json(
                &format!("/api/v1/jobs/{name}/upgrade"),
                &json!({"plugin": plugin, "version": version}),
            )?;
            (c, v)
        }
        JobCmd::Delete { name, conn } => {
            Client::new(&conn).delete(&format!("/api/v1/jobs/{name}"))?;
            println!("job `{name}` deleted");
            return Ok(());
        }
    };
    c.print(&v, job_table);
    Ok(())
}

pub fn views(cmd: ViewCmd) -> Result<()> {
    match cmd {
        ViewCmd::List(c) => {
            let c = Client::new(&c.conn);
            let v = c.get("/api/v1/views")?;
            c.print(&v, |v| {
                let mut t = table(&["view", "entries", "evicted"]);
                for x in v["views"].as_array().into_iter().flatten() {
                    t.add_row(vec![s(&x["name"]), s(&x["entries"]), s(&x["evicted"])]);
                }
                t
            });
        }
        ViewCmd::Query {
            name,
            key,
            latest,
            sort,
            limit,
            rank_of,
            conn,
        } => {
            let c = Client::new(&conn);
            let mut q = vec![];
            if let Some(k) = key {
                q.push(format!("key={}", enc(&k)));
            }
            if latest {
                q.push("latest=true".into());
            }
            if let Some(x) = sort {
                q.push(format!("sort={}", enc(&x)));
            }
            if let Some(x) = limit {
                q.push(format!("limit={x}"));
            }
            if let Some(x) = rank_of {
                q.push(format!("rank_of={}", enc(&x)));
            }
            let v = c.get(&format!("/api/v1/views/{name}?{}", q.join("&")))?;
            c.print(&v, |v| {
                let mut t = table(&["key", "window start", "window end", "value"]);
                for r in v["rows"].as_array().into_iter().flatten() {
                    t.add_row(vec![
                        s(&r["key"]),
                        s(&r["window_start"]),
                        s(&r["window_end"]),
                        r["value"].to_string(),
                    ]);
                }
                if let Some(rank) = v.get("rank") {
                    t.add_row(vec!["rank".into(), s(rank), String::new(), String::new()]);
                }
                t
            });
        }
    }
    Ok(())
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn ingest(a: IngestArgs) -> Result<()> {
    let c = Client::new(&a.conn);
    let mut input: Box<dyn BufRead> = if a.file == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&a.file).with_context(|| format!("cannot open {}", a.file))?,
        ))
    };
    let mut q = vec![];
    if let Some(k) = &a.key_field {
        q.push(format!("key_field={}", enc(k)));
    }
    if let Some(t) = &a.time_field {
        q.push(format!("time_field={}", enc(t)));
    }
    if a.bare {
        q.push("bare=true".into());
    }
    let path = format!("/api/v1/topics/{}/records?{}", a.topic, q.join("&"));
    let lines: Box<dyn Iterator<Item = Result<String>>> = if a.json_array {
        let mut text = String::new();
        input.read_to_string(&mut text)?;
        let items: Vec<Value> = serde_json::from_str(&text).context("input is not a JSON array")?;
        Box::new(items.into_iter().map(|v| Ok(v.to_string())))
    } else {
        Box::new(
            input
                .lines()
                .map(|l| l.map_err(anyhow::Error::from))
                .filter(|l| l.as_ref().map_or(true, |s| !s.trim().is_empty())),
        )
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} records sent ({per_sec}) {msg}")
            .expect("valid template"),
    );
    let started = Instant::now();
    let (mut sent, mut batches, mut dups) = (0u64, 0u64, 0u64);
    let mut buf: Vec<String> = Vec::with_capacity(a.batch);
    let mut flush = |buf: &mut Vec<String>| -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let body = buf.join("\n");
        loop {
            match c.send("POST", &path, "application/x-ndjson", body.as_bytes()) {
                Ok(v) => {
                    dups += v["partitions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["duplicate"] == true)
                        .count() as u64;
                    break;
                }
                Err(e) if e.to_string().contains("429") || e.to_string().contains("503") => {
                    bar.set_message("server busy, retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e.context(format!("after {sent} records had been accepted"))),
            }
        }
        sent += buf.len() as u64;
        batches += 1;
        bar.set_position(sent);
        buf.clear();
        Ok(())
    };
    for line in lines {
        buf.push(line?);
        if buf.len() >= a.batch {
            flush(&mut buf)?;
        }
    }
    flush(&mut buf)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let summary = json!({"topic": a.topic, "records": sent, "requests": batches, "seconds": secs,
        "records_per_second": sent as f64 / secs.max(1e-9), "duplicate_partitions": dups});
    if c.json {
        println!("{summary}");
    } else {
        println!(
            "sent {sent} records to `{}` in {batches} requests, {secs:.2} s ({:.0} records/s)",
            a.topic,
            sent as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

pub fn tail(a: TailArgs) -> Result<()> {
    let c = Client::new(&a.conn);
    let topic = c.get(&format!("/api/v1/topics/{}", a.topic))?;
    let parts: Vec<u32> = match a.partition {
        Some(p) => vec![p],
        None => (0..topic["partitions"].as_u64().unwrap_or(1) as u32).collect(),
    };
    let mut next: Vec<u64> = parts
        .iter()
        .map(|&p| {
            let info = &topic["partition_info"][p as usize];
            if a.from_earliest {
                info["start_offset"].as_u64().unwrap_or(0)
            } else {
                info["end_offset"].as_u64().unwrap_or(0)
            }
        })
        .collect();
    let out = std::io::stdout();
    loop {
        let mut any = false;
        for (i, &p) in parts.iter().enumerate() {
            let v = c.get(&format!(
                "/api/v1/topics/{}/records?partition={p}&offset={}&limit=500",
                a.topic, next[i]
            ))?;
            for r in v["records"].as_array().into_iter().flatten() {
                any = true;
                let mut o = out.lock();
                if c.json {
                    writeln!(o, "{r}")?;
                } else {
                    writeln!(
                        o,
                        "p{} @{} key={} {}",
                        r["partition"],
                        r["offset"],
                        s(&r["key"]),
                        r["value"]
                    )?;
                }
            }
            next[i] = v["next_offset"].as_u64().unwrap_or(next[i]);
        }
        if !any {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
