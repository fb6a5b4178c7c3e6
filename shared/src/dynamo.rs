//! The one DynamoDB table (`PUBLISHER_TABLE`) every function shares: runtime
//! configs, posted sets, publish claims, credential checks (publish.md).
//! Endpoint, region and credentials come from the standard AWS chain.

use aws_sdk_dynamodb::Client;

#[derive(Clone, Debug)]
pub struct Table {
    pub client: Client,
    pub name: String,
}

impl Table {
    /// Connects to `name` with the AWS configuration of the environment.
    pub async fn connect(name: &str) -> Table {
        let config = aws_config::load_from_env().await;
        Table {
            client: Client::new(&config),
            name: name.to_string(),
        }
    }
}
