use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use lakesight::cli::{self, Cli, LogFormat, exit};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are successes; anything else is a usage error, never "changes" (2).
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::SUCCESS });
        }
    };
    init_tracing(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{}", cli::render_error(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_tracing(global: &cli::Global) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,lakesight=info",
        (false, 1) => "info,lakesight=debug",
        _ => "debug,lakesight=trace",
    };
    let filter = EnvFilter::try_from_env("LAKESIGHT_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let color = !global.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match global.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(color).without_time().init(),
    }
}
