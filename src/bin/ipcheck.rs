//! The `ipcheck` Lambda function: the scorer behind `lambda_runtime`.
//!
//! `ipcheck --event <file>` runs one SQS event from a file instead, against whatever
//! `AWS_ENDPOINT_URL` names, and prints the findings and then the batch response.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_lambda_events::event::sqs::SqsEvent;
use lakesight::scorer::{self, Config, Scorer};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let clients = scorer::clients(&config, &sdk).await;
    let scorer = Arc::new(Scorer::new(config, clients));

    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice()
        && flag == "--event"
    {
        let event: SqsEvent = serde_json::from_slice(&std::fs::read(path)?)?;
        let (response, report) = scorer.handle(&event).await;
        tracing::info!(report = %serde_json::to_string(&report)?, "invocation");
        println!("{}", serde_json::to_string(&response)?);
        return Ok(());
    }

    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let scorer = Arc::clone(&scorer);
        async move {
            let (response, report) = scorer.handle(&event.payload).await;
            tracing::info!(report = %serde_json::to_string(&report)?, "invocation");
            Ok::<_, Error>(response)
        }
    }))
    .await
}
