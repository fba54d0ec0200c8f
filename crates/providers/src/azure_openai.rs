//! Azure OpenAI: OpenAI's wire format at deployment URLs
//! (`{base}/openai/deployments/{deployment}/chat/completions?api-version=...`), authenticated with
//! an `api-key` header. The deployment's `model` in Tollgate's config is the Azure deployment name.

use crate::openai::{send_chat, send_embeddings};
use crate::transport::Post;
use crate::{ChatReply, Complete, Endpoint, ProviderApi, ProviderError, Via};
use tollgate_config::Provider as ProviderConfig;
use tollgate_config::Secret;
use tollgate_types::openai::{ChatCompletionRequest, EmbeddingsRequest};

/// An Azure OpenAI resource.
#[derive(Debug, Clone)]
pub struct AzureOpenAi {
    base_url: String,
    api_version: String,
    api_key: Option<Secret>,
}

impl AzureOpenAi {
    pub(crate) fn new(cfg: &ProviderConfig) -> Self {
        AzureOpenAi {
            base_url: cfg.base_url.clone(),
            api_version: cfg.api_version.clone(),
            api_key: cfg.api_key.clone(),
        }
    }

    /// The URL of one operation of one deployment.
    pub(crate) fn url(&self, deployment: &str, operation: &str) -> String {
        format!(
            "{}/openai/deployments/{}/{}?api-version={}",
            self.base_url, deployment, operation, self.api_version
        )
    }

    fn post<'a>(&'a self, http: Via<'a>, url: &'a Endpoint) -> Post<'a> {
        let b = http.post(url);
        match &self.api_key {
            Some(k) => b.header("api-key", k.expose()),
            None => b,
        }
    }
}

impl ProviderApi for AzureOpenAi {
    async fn chat(
        &self,
        http: Via<'_>,
        req: &ChatCompletionRequest,
        model: &str,
    ) -> Result<ChatReply, ProviderError> {
        let url = Endpoint::new(self.url(model, "chat/completions"));
        send_chat(self.post(http, &url), req, model).await
    }

    async fn embeddings(
        &self,
        http: Via<'_>,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<Complete, ProviderError> {
        let url = Endpoint::new(self.url(model, "embeddings"));
        send_embeddings(self.post(http, &url), req, model).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_urls_carry_the_api_version() {
        let cfg = tollgate_config::Config::from_yaml_str(
            "providers:\n  - { name: az, type: azure_openai, base_url: \"https://x.openai.azure.com/\", api_key: k }\n",
            &|_| None,
        )
        .unwrap();
        let az = AzureOpenAi::new(&cfg.providers[0]);
        assert_eq!(
            az.url("prod-4o", "chat/completions"),
            "https://x.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
        );
    }
}
