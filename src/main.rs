//! The `vigil` command: wires the library crates into `serve`, `query`, `bench`, `demo`,
//! `load`, `chaos`, `rules` and `nab`.

mod allocator;
mod api_client;
mod bench;
mod chaos;
mod cli;
mod config;
mod demo;
mod load;
mod nab;
mod notify;
mod process;
mod query;
mod reload;
mod rules;
mod serve;
mod silence;

use clap::Parser;

fn main() -> std::process::ExitCode {
    process::started();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            cli::Command::Serve(args) => serve::run(args).await,
            cli::Command::Query(args) => query::run(args).await,
            cli::Command::Bench(args) => bench::run(args).await,
            cli::Command::Demo(args) => demo::run(args).await,
            cli::Command::Load(args) => load::run(args).await,
            cli::Command::Chaos(args) => chaos::run(args).await,
            cli::Command::Silence(args) => silence::run(args).await,
            cli::Command::Rules(args) => rules::run(args),
            cli::Command::Nab(args) => nab::run(args),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
