//! The `sluice` command line: `serve`, `demo`, and client subcommands that
//! speak the HTTP API (`--server`, `--token`, `--json`).
//!
//! Only `main.rs` calls in here; errors become one readable line and a
//! non-zero exit.

pub mod client;
pub mod demo;
pub mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sluice: streaming analytics with WebAssembly operators, on one machine.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the appliance (HTTP API, shards, jobs).
    Serve(ServeArgs),
    /// Run an embedded appliance with synthetic traffic and show what it computes.
    Demo(DemoArgs),
    /// Create, list, describe and delete topics.
    #[command(subcommand)]
    Topics(TopicCmd),
    /// Send events to a topic from a file or stdin (NDJSON or a JSON array).
    Ingest(IngestArgs),
    /// Upload, list, describe and delete plugins.
    #[command(subcommand)]
    Plugins(PluginCmd),
    /// Create, list, inspect, stop, resume, upgrade and delete jobs.
    #[command(subcommand)]
    Jobs(JobCmd),
    /// Query materialized views.
    #[command(subcommand)]
    Views(ViewCmd),
    /// Follow the records arriving in a topic.
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); flags below override it.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:7070.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Number of shards (0 = one per core).
    #[arg(long)]
    pub shards: Option<usize>,
    #[arg(long, env = "SLUICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest request body, bytes.
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Most records per ingest request.
    #[arg(long)]
    pub max_batch_records: Option<usize>,
    /// Log filter, e.g. `info` or `sluice=debug`.
    #[arg(long)]
    pub log_level: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after this many seconds, print a summary and exit 0.
    #[arg(long = "for", value_name = "SECONDS")]
    pub for_secs: Option<u64>,
    /// Where the dashboard and API listen.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: std::net::SocketAddr,
    /// Events per second per scenario.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// Keep the data here instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print one summary line per second instead of redrawing the screen.
    #[arg(long)]
    pub plain: bool,
}

/// Where the server is and how to talk to it.
#[derive(Debug, Args, Clone)]
pub struct Conn {
    #[arg(
        long,
        env = "SLUICE_SERVER",
        default_value = "http://127.0.0.1:7070",
        global = true
    )]
    pub server: String,
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TopicCmd {
    /// List topics with their partitions, records and bytes.
    List(ConnOnly),
    /// Create a topic.
    Create {
        name: String,
        #[arg(long)]
        partitions: Option<u32>,
        /// always | never | interval(5ms)
        #[arg(long)]
        fsync: Option<String>,
        #[arg(long)]
        retention_ms: Option<u64>,
        #[arg(long)]
        retention_bytes: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a topic's partitions, offsets and the lag of the jobs reading it.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a topic no job uses.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Args)]
pub struct ConnOnly {
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    pub topic: String,
    /// File to read, or `-` for stdin.
    #[arg(default_value = "-")]
    pub file: String,
    /// The input is one JSON array rather than NDJSON.
    #[arg(long)]
    pub json_array: bool,
    /// Lines are bare values; take the key from this field.
    #[arg(long)]
    pub key_field: Option<String>,
    /// Lines are bare values; take the event time from this field.
    #[arg(long)]
    pub time_field: Option<String>,
    /// Lines are bare values without key or time fields.
    #[arg(long)]
    pub bare: bool,
    /// Records per request.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum PluginCmd {
    /// List plugin versions with their digest and size.
    List(ConnOnly),
    /// Upload a `.wasm` as `name@version` (validated; versions are immutable).
    Upload {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a plugin version (`name@version`) and the jobs using it.
    Describe {
        plugin: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a plugin version (`name@version`) no job uses.
    Delete {
        plugin: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// List jobs with their state, rate and lag.
    List(ConnOnly),
    /// Create a job from a spec file (JSON or TOML).
    Create {
        spec: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a job's state, figures, checkpoints and errors.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stop a job after a final checkpoint.
    Stop {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Resume a stopped or paused job from its last checkpoint.
    Resume {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Checkpoint a running job now.
    Checkpoint {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Move the job's operators of a plugin to another version.
    Upgrade {
        name: String,
        #[arg(long)]
        plugin: String,
        #[arg(long)]
        version: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a job, its checkpoints and internal topics.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum ViewCmd {
    /// List views with their entry counts.
    List(ConnOnly),
    /// Query a view: a key, the newest window, a leaderboard order, a rank.
    Query {
        name: String,
        #[arg(long)]
        key: Option<String>,
        /// Only the newest window.
        #[arg(long)]
        latest: bool,
        /// Order by this numeric field, largest first.
        #[arg(long)]
        sort: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        /// Also report the rank of this key.
        #[arg(long)]
        rank_of: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Args)]
pub struct TailArgs {
    pub topic: String,
    #[arg(long)]
    pub partition: Option<u32>,
    /// Start from the earliest record instead of new ones only.
    #[arg(long)]
    pub from_earliest: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing flags (e.g. a `--version` argument against the
        // version flag), which clap reports only at run time otherwise.
        super::Cli::command().debug_assert();
    }

    #[test]
    fn plugin_upload_takes_a_version_argument() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "sluice",
            "plugins",
            "upload",
            "p.wasm",
            "--name",
            "p",
            "--version",
            "1.0.0",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
    }
}
