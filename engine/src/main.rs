//! The `sluice` binary: see `sluice --help`.

use clap::Parser;
use mimalloc::MiMalloc;

use sluice::cli::{Cli, Cmd, client, demo, serve};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    sluice::alloc::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Serve(a) => serve::run(a),
        Cmd::Demo(a) => demo::run(a),
        Cmd::Topics(c) => client::topics(c),
        Cmd::Ingest(a) => client::ingest(a),
        Cmd::Plugins(c) => client::plugins(c),
        Cmd::Jobs(c) => client::jobs(c),
        Cmd::Views(c) => client::views(c),
        Cmd::Tail(a) => client::tail(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
